"""NASNet-A at any "N @ P" size: the mobile ImageNet model (4 @ 1056) and the CIFAR-10 model (6 @ 768).

Paper: "Learning Transferable Architectures for Scalable Image Recognition", Zoph et al., arXiv:1707.07012.
Authors' code: https://github.com/tensorflow/models (``research/slim/nets/nasnet``: ``nasnet.py``,
``nasnet_utils.py``). timm has only NASNet-A Large (6 @ 4032, ``nasnetalarge``), whose cells
(:class:`CellStem0`, :class:`CellStem1`, :class:`FirstCell`, :class:`NormalCell`, :class:`ReductionCell0`,
:class:`ReductionCell1`, from the Cadene port of the TF-slim checkpoints) this module reuses unchanged.

"N @ P": N normal cells per stack, three stacks separated by two reduction cells, P = 24 x the base
filter count (the penultimate layer concatenates 6 branches of 4 x base filters). The TF-slim
configurations differ in:

* stem: ImageNet models use a 3x3/2 VALID conv (``stem_size`` = 32 x stem multiplier) and two
  reduction-style stem cells; the CIFAR model a 3x3/1 conv with 96 filters and no stem cells;
* ``skip_reduction_layer_input``: NASNet-A Large (1) feeds the first normal cell after a reduction the
  hidden state from *before* the reduction's inputs; the mobile and CIFAR models (0) feed it the
  reduction cell's input. This changes only which tensor is passed (same shapes, same parameters);
* the CIFAR model's first cell has the raw stem output as its previous hidden state, so TF-slim gives
  it 1x1 projections where the stem width (96) differs from the cell width (32)
  (:class:`CifarFirstCell`, composed of timm's NASNet building blocks).

Cell and module names follow timm's ``nasnetalarge`` (and the converted TF-slim checkpoints): normal
cells of stack s are ``cell_{s * max(N, 6) + i}`` (mobile: cell_0-3, cell_6-9, cell_12-15), so that the
large configuration built here is timm's ``nasnetalarge`` key for key. The paper's auxiliary head (used
only in training) is not built; the paper's parameter counts exclude it (see the card).
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import ConvNormAct, create_classifier, create_pool2d, get_device_dtype
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._registry import generate_default_cfgs
from timm.models.nasnet import (
    ActConvBn,
    BranchSeparables,
    CellStem0,
    CellStem1,
    FirstCell,
    NormalCell,
    ReductionCell0,
    ReductionCell1,
)

from archzoo.checkpoint import unwrap_state_dict

__all__ = ["NASNetA", "CifarFirstCell", "checkpoint_filter_fn"]

_BN = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)  # TF-slim's batch norm epsilon


class _PoolProject(nn.Sequential):
    """TF-slim's pooling op on a hidden state of another width: pool, then 1x1 conv + BN (no ReLU)."""

    def __init__(self, pool: str, in_chs: int, out_chs: int, pad_type: str = "", **dd: Any) -> None:
        super().__init__()
        kw = dict(count_include_pad=False) if pool == "avg" else {}
        self.pool = create_pool2d(pool, 3, 1, padding=pad_type, **kw)
        self.conv = nn.Conv2d(in_chs, out_chs, 1, bias=False, **dd)
        self.bn = _BN(out_chs, **dd)


class CifarFirstCell(nn.Module):
    """NASNet-A normal cell whose previous hidden state is the raw CIFAR stem (TF-slim ``cell_0``).

    Same operations as :class:`timm.models.nasnet.NormalCell`, but the previous state is used as is:
    the separable branches on it start from its width (``stem_cell=True``: first separable conv maps
    in -> out), the identity branch becomes ReLU-1x1-BN, the pooling branches get a 1x1 + BN, and the
    concatenated copy is projected by 1x1 + BN (TF-slim's stride-1 ``factorized_reduction``).
    """

    def __init__(self, in_chs: int, out_chs: int, pad_type: str = "", device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.conv_1x1 = ActConvBn(in_chs, out_chs, 1, stride=1, **dd)
        self.comb_iter_0_left = BranchSeparables(out_chs, out_chs, 5, 1, pad_type, **dd)
        self.comb_iter_0_right = BranchSeparables(in_chs, out_chs, 3, 1, pad_type, stem_cell=True, **dd)
        self.comb_iter_1_left = BranchSeparables(in_chs, out_chs, 5, 1, pad_type, stem_cell=True, **dd)
        self.comb_iter_1_right = BranchSeparables(in_chs, out_chs, 3, 1, pad_type, stem_cell=True, **dd)
        self.comb_iter_2_left = create_pool2d("avg", 3, 1, count_include_pad=False, padding=pad_type)
        self.comb_iter_2_right = ActConvBn(in_chs, out_chs, 1, stride=1, **dd)
        self.comb_iter_3_left = _PoolProject("avg", in_chs, out_chs, pad_type, **dd)
        self.comb_iter_3_right = _PoolProject("avg", in_chs, out_chs, pad_type, **dd)
        self.comb_iter_4_left = BranchSeparables(out_chs, out_chs, 3, 1, pad_type, **dd)
        self.prev_proj = nn.Sequential()
        self.prev_proj.add_module("conv", nn.Conv2d(in_chs, out_chs, 1, bias=False, **dd))
        self.prev_proj.add_module("bn", _BN(out_chs, **dd))

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor | None = None) -> torch.Tensor:
        x_left = x if x_prev is None else x_prev  # the stem output, not projected (TF-slim)
        x_right = self.conv_1x1(x)
        c0 = self.comb_iter_0_left(x_right) + self.comb_iter_0_right(x_left)
        c1 = self.comb_iter_1_left(x_left) + self.comb_iter_1_right(x_left)
        c2 = self.comb_iter_2_left(x_right) + self.comb_iter_2_right(x_left)
        c3 = self.comb_iter_3_left(x_left) + self.comb_iter_3_right(x_left)
        c4 = self.comb_iter_4_left(x_right) + x_right
        return torch.cat([self.prev_proj(x_left), c0, c1, c2, c3, c4], 1)


class NASNetA(nn.Module):
    """NASNet-A (N @ P) built from timm's NASNet-A cells."""

    def __init__(
            self,
            num_classes: int = 1000,
            in_chans: int = 3,
            stem: str = "imagenet",
            stem_size: int = 32,
            num_features: int = 1056,
            cells_per_stack: int = 4,
            skip_reduction_input: bool = False,
            drop_rate: float = 0.0,
            global_pool: str = "avg",
            pad_type: str = "same",
            device: Any = None,
            dtype: Any = None,
    ) -> None:
        super().__init__()
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        if num_features % 24:
            raise ValueError(f"num_features (P) must be a multiple of 24, got {num_features}")
        dd = {"device": device, "dtype": dtype}
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = self.head_hidden_size = num_features
        self.skip_reduction_input = skip_reduction_input
        c = num_features // 24
        n = cells_per_stack

        # (module name, kind) in forward order; kinds: stem0 | stem1 | cell | reduction
        self.layout: list[tuple[str, str]] = []
        if stem == "imagenet":
            self.conv0 = ConvNormAct(in_chans, stem_size, 3, stride=2, padding=0, norm_layer=_BN, apply_act=False, **dd)
            self.cell_stem_0 = CellStem0(stem_size, num_channels=c // 4, pad_type=pad_type, **dd)
            self.cell_stem_1 = CellStem1(stem_size, num_channels=c // 2, pad_type=pad_type, **dd)
            self.layout += [("cell_stem_0", "stem0"), ("cell_stem_1", "stem1")]
            prev_chs, cur_chs, stem_red = c, 2 * c, 4  # widths of (x_stem_0, x_stem_1)
            self.feature_info = [dict(num_chs=stem_size, reduction=2, module="conv0"),
                                 dict(num_chs=c, reduction=4, module="cell_stem_1.conv_1x1.act")]
        else:
            # TF-slim's CIFAR stem: 3x3/1 SAME conv + BN, no stem cells
            self.conv0 = ConvNormAct(in_chans, stem_size, 3, stride=1, padding=1, norm_layer=_BN, apply_act=False, **dd)
            prev_chs, cur_chs, stem_red = None, stem_size, 1
            self.feature_info = [dict(num_chs=stem_size, reduction=1, module="conv0")]

        offset = max(n, 6)
        for s in range(3):
            f = c * 2 ** s
            if s > 0:
                name = f"reduction_cell_{s - 1}"
                red_cls = ReductionCell0 if s == 1 else ReductionCell1
                setattr(self, name, red_cls(in_chs_left=prev_chs, out_chs_left=f, in_chs_right=cur_chs,
                                            out_chs_right=f, pad_type=pad_type, **dd))
                self.feature_info.append(dict(num_chs=cur_chs, reduction=stem_red * 2 ** (s - 1),
                                              module=f"{name}.conv_1x1.act"))
                self.layout.append((name, "reduction"))
                # the next cell's previous state: the reduction's input, or (Large) its previous state
                prev_chs, cur_chs = (prev_chs if skip_reduction_input else cur_chs), 4 * f
            for i in range(n):
                name = f"cell_{s * offset + i}"
                if i == 0 and prev_chs is None:
                    cell = CifarFirstCell(cur_chs, f, pad_type=pad_type, **dd)
                elif i == 0:
                    # the previous state has twice the resolution: factorized reduction
                    cell = FirstCell(in_chs_left=prev_chs, out_chs_left=f // 2, in_chs_right=cur_chs,
                                     out_chs_right=f, pad_type=pad_type, **dd)
                else:
                    cell = NormalCell(in_chs_left=prev_chs, out_chs_left=f, in_chs_right=cur_chs,
                                      out_chs_right=f, pad_type=pad_type, **dd)
                setattr(self, name, cell)
                self.layout.append((name, "cell"))
                prev_chs, cur_chs = cur_chs, 6 * f
        assert cur_chs == num_features
        self.act = nn.ReLU(inplace=True)
        self.feature_info.append(dict(num_chs=num_features, reduction=stem_red * 4, module="act"))
        self.global_pool, self.head_drop, self.last_linear = create_classifier(
            num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^conv0|cell_stem_[01]",
                    blocks=[(r"^cell_(\d+)", None), (r"^reduction_cell_0", (6,)), (r"^reduction_cell_1", (12,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        assert not enable, "gradient checkpointing not supported"

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.last_linear

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is None:
            global_pool = self.global_pool.pool_type
        self.global_pool, self.last_linear = create_classifier(
            self.num_features, num_classes, pool_type=global_pool, **get_device_dtype(self))

    def _run(self, x: torch.Tensor, taps: set[int] | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward through the cells; ``taps`` are feature_info indices to collect (ReLU'd like the hooks)."""
        feats: list[torch.Tensor] = []
        x = self.conv0(x)
        if taps is not None and 0 in taps:
            feats.append(x)
        x_prev: torch.Tensor | None = None
        tap = 1
        for name, kind in self.layout:
            layer = getattr(self, name)
            if kind == "stem0":
                x_prev, x = x, layer(x)
            elif kind == "stem1":
                if taps is not None and tap in taps:
                    feats.append(F.relu(x))
                tap += 1
                x_prev, x = x, layer(x_prev, x)
            elif kind == "reduction":
                if taps is not None and tap in taps:
                    feats.append(F.relu(x))
                tap += 1
                x_red = layer(x, x_prev)
                x_prev = x_prev if self.skip_reduction_input else x
                x = x_red
            else:
                x_prev, x = x, layer(x, x_prev)
        x = self.act(x)
        if taps is not None and tap in taps:
            feats.append(x)
        return x, feats

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The ``feature_info`` taps (stem conv, then the ReLU'd inputs of cell_stem_1 / the reduction
        cells, then the final activation); the whole network always runs (cells take two inputs)."""
        if output_fmt != "NCHW":
            raise ValueError("output_fmt must be 'NCHW'")
        take, _ = feature_take_indices(len(self.feature_info), indices)
        x, feats = self._run(x, set(take))
        return feats if intermediates_only else (x, feats)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.last_linear(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's / Cadene's converted TF-slim key layout is this module's; unwrap and drop the 1001st
    (background) class of the TF-slim ImageNet heads when the model has 1000 classes."""
    out = unwrap_state_dict(state_dict, wrapper_keys=("model", "state_dict_ema", "state_dict"))
    fc = getattr(model, "last_linear", None)
    w = out.get("last_linear.weight")
    if isinstance(fc, nn.Linear) and w is not None and w.shape[0] == fc.out_features + 1:
        out["last_linear.weight"] = w[1:]
        out["last_linear.bias"] = out["last_linear.bias"][1:]
    return out


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> NASNetA:
    # ImageNet models have 5 feature taps (stride 2 ... 32), the CIFAR model 4 (stride 1 ... 4)
    out_indices = kwargs.pop("out_indices", tuple(range(5 if kwargs.get("stem", "imagenet") == "imagenet" else 4)))
    return build_model_with_cfg(
        NASNetA, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls="hook", no_rewrite=True, out_indices=out_indices), **kwargs)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7), "crop_pct": 0.875,
        "interpolation": "bicubic", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
        "first_conv": "conv0.conv", "classifier": "last_linear", "license": "apache-2.0",
        "paper_ids": "arXiv:1707.07012", "origin_url": "https://github.com/tensorflow/models", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "nasnet_a_mobile": _cfg(),
    "nasnet_a_cifar": _cfg(num_classes=10, input_size=(3, 32, 32), pool_size=(8, 8), crop_pct=1.0,
                           mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616)),
})


@register_model
def nasnet_a_mobile(pretrained: bool = False, **kwargs: Any) -> NASNetA:
    """NASNet-A (4 @ 1056), the paper's mobile ImageNet model (TF-slim ``nasnet_mobile``: 32-filter
    stem, 44 base filters, 12 normal cells, no skip of the reduction input)."""
    args = dict(stem="imagenet", stem_size=32, num_features=1056, cells_per_stack=4, skip_reduction_input=False)
    return _create("nasnet_a_mobile", pretrained, **dict(args, **kwargs))


@register_model
def nasnet_a_cifar(pretrained: bool = False, **kwargs: Any) -> NASNetA:
    """NASNet-A (6 @ 768), the paper's CIFAR-10 model (TF-slim ``nasnet_cifar``: 96-filter 3x3 stem,
    32 base filters, 18 normal cells); 10 classes by default, no auxiliary head."""
    args = dict(stem="cifar", stem_size=96, num_features=768, cells_per_stack=6, skip_reduction_input=False,
                num_classes=10)
    return _create("nasnet_a_cifar", pretrained, **dict(args, **kwargs))
