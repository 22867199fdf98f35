"""Isotropic (ViT-style, single-stage) ConvNeXt and InceptionNeXt.

Papers:
  * "A ConvNet for the 2020s", Liu et al., arXiv:2201.03545, Section 3.3 / Table 2: ConvNeXt-S/B/L (iso.),
    dims 384 / 768 / 1024, depths 18 / 18 / 36, 16x16 patchify stem, no downsampling.
    Authors' code: https://github.com/facebookresearch/ConvNeXt (``models/convnext_isotropic.py``).
  * "InceptionNeXt: When Inception Meets ConvNeXt", Yu et al., arXiv:2303.16900, Table 5:
    InceptionNeXt-S (iso.), built "following ConvNeXt-S (iso.)" with dim 384 and 18 blocks.
    Authors' code: https://github.com/sail-sg/inceptionnext (the isotropic model is not in it).

Both networks are one stem, a flat stack of blocks at stride 16, global average pooling, LayerNorm and a
linear classifier. The blocks are timm's own: :class:`timm.models.convnext.ConvNeXtBlock` (the authors'
``Block``: 7x7 depthwise conv, channels-last LayerNorm, Linear-GELU-Linear MLP, optional layer scale)
and :class:`timm.models.inception_next.MetaNeXtBlock` with :class:`InceptionDWConv2d` (the authors'
MetaNeXt block: inception depthwise mixer, BatchNorm, 1x1-conv MLP, layer scale). The head is timm's
:class:`NormMlpClassifierHead` (pool -> LayerNorm -> fc), the layout of timm's hierarchical ConvNeXt.

InceptionNeXt-S (iso.) is not in the authors' code. Where the paper is silent this module follows the
MetaNeXt defaults of the released hierarchical models (BatchNorm in the block, layer scale 1e-6,
MLP ratio 4, mixer branch ratio 1/8 with 3x3 square and 11-wide band kernels) and the ConvNeXt-S (iso.)
macro design (16x16 conv stem without norm, final LayerNorm + linear head); this gives the paper's
22 M parameters (see the paper card).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import torch
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import LayerNorm2d, NormMlpClassifierHead, trunc_normal_
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs
from timm.models.convnext import ConvNeXtBlock
from timm.models.inception_next import InceptionDWConv2d, MetaNeXtBlock

from archzoo.checkpoint import unwrap_state_dict

__all__ = ["IsotropicNet", "checkpoint_filter_fn", "BLOCK_TYPES"]


def _convnext_block(dim: int, drop_path: float, ls_init_value: float | None, mlp_ratio: float,
                    **dd: Any) -> nn.Module:
    # the authors' isotropic models use layer_scale_init_value=0, i.e. no gamma (timm: None)
    return ConvNeXtBlock(dim, mlp_ratio=mlp_ratio, ls_init_value=ls_init_value or None,
                         drop_path=drop_path, **dd)


def _inceptionnext_block(dim: int, drop_path: float, ls_init_value: float | None, mlp_ratio: float,
                         **dd: Any) -> nn.Module:
    return MetaNeXtBlock(dim, token_mixer=InceptionDWConv2d, mlp_ratio=mlp_ratio,
                         ls_init_value=ls_init_value or 0., drop_path=drop_path, **dd)


BLOCK_TYPES: dict[str, Callable[..., nn.Module]] = {
    "convnext": _convnext_block,
    "inceptionnext": _inceptionnext_block,
}


class IsotropicNet(nn.Module):
    """Patchify stem -> ``depth`` blocks of width ``dim`` (no downsampling) -> pool -> LayerNorm -> fc."""

    def __init__(
            self,
            block: str = "convnext",
            depth: int = 18,
            dim: int = 384,
            patch_size: int = 16,
            mlp_ratio: float = 4.0,
            ls_init_value: float | None = None,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            head_init_scale: float = 1.0,
            device: Any = None,
            dtype: Any = None,
    ) -> None:
        super().__init__()
        if block not in BLOCK_TYPES:
            raise ValueError(f"block must be one of {sorted(BLOCK_TYPES)}, got {block!r}")
        dd = {"device": device, "dtype": dtype}
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_features = self.head_hidden_size = dim
        self.patch_size = patch_size
        self.grad_checkpointing = False

        self.stem = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size, **dd)
        # linear stochastic-depth schedule over all blocks, as in the authors' code; computed without
        # tensors so that the model builds on the meta device
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        make = BLOCK_TYPES[block]
        self.blocks = nn.Sequential(*[make(dim, dpr[i], ls_init_value, mlp_ratio, **dd) for i in range(depth)])
        self.feature_info = [dict(num_chs=dim, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)]
        self.head = NormMlpClassifierHead(dim, num_classes, pool_type=global_pool, drop_rate=drop_rate,
                                          norm_layer=partial(LayerNorm2d, eps=1e-6), **dd)
        self.apply(self._init_weights)
        if head_init_scale != 1.0 and isinstance(self.head.fc, nn.Linear):
            with torch.no_grad():
                self.head.fc.weight.mul_(head_init_scale)
                self.head.fc.bias.mul_(head_init_scale)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # authors' init: trunc normal 0.02 for convs and linears, zero bias
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stem", blocks=r"^blocks\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Block outputs (NCHW, stride ``patch_size``); ``norm`` applies the head's LayerNorm to each."""
        if output_fmt != "NCHW":
            raise ValueError("output_fmt must be 'NCHW'")
        take, max_index = feature_take_indices(len(self.blocks), indices)
        blocks = self.blocks[: max_index + 1] if stop_early or intermediates_only else self.blocks
        x = self.stem(x)
        out = []
        for i, blk in enumerate(blocks):
            x = blk(x)
            if i in take:
                out.append(self.head.norm(x) if norm else x)
        if intermediates_only:
            return out
        return x, out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max_index + 1]
        if prune_head:
            self.reset_classifier(0, "")
            if prune_norm:
                self.head.norm = nn.Identity()
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=True) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# the authors' ConvNeXt Block names -> timm's ConvNeXtBlock names
_CONVNEXT_RENAMES = (("dwconv.", "conv_dw."), ("pwconv1.", "mlp.fc1."), ("pwconv2.", "mlp.fc2."))


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The authors' ``ConvNeXtIsotropic`` keys (``stem``, ``blocks.i.dwconv/norm/pwconv1/pwconv2/gamma``,
    ``norm``, ``head``) -> this module's (timm block names, ``head.norm``/``head.fc``). A state dict
    already in this module's layout passes through unchanged."""
    state_dict = unwrap_state_dict(state_dict, wrapper_keys=("model", "state_dict_ema", "state_dict"))
    out = {}
    for k, v in state_dict.items():
        if k.startswith("blocks."):
            for old, new in _CONVNEXT_RENAMES:
                k = k.replace(old, new)
        elif k.startswith("norm."):
            k = "head." + k
        elif k in ("head.weight", "head.bias"):
            k = "head.fc." + k.split(".")[-1]
        out[k] = v
    return out


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> IsotropicNet:
    out_indices = kwargs.pop("out_indices", 3)
    return build_model_with_cfg(
        IsotropicNet, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs)


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (14, 14),
        "crop_pct": 0.875, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "stem", "classifier": "head.fc", **kwargs,
    }


_FB = "https://dl.fbaipublicfiles.com/convnext/"
_CONVNEXT = dict(license="mit", paper_ids="arXiv:2201.03545", origin_url="https://github.com/facebookresearch/ConvNeXt")
_INEXT = dict(license="apache-2.0", paper_ids="arXiv:2303.16900", origin_url="https://github.com/sail-sg/inceptionnext")

default_cfgs = generate_default_cfgs({
    "convnext_iso_small.fb_in1k": _cfg(_FB + "convnext_iso_small_1k_224_ema.pth", **_CONVNEXT),
    "convnext_iso_base.fb_in1k": _cfg(_FB + "convnext_iso_base_1k_224_ema.pth", **_CONVNEXT),
    "convnext_iso_large.fb_in1k": _cfg(_FB + "convnext_iso_large_1k_224_ema.pth", **_CONVNEXT),
    "inceptionnext_iso_small": _cfg(**_INEXT),  # no released weights
})


def _convnext_iso(variant: str, pretrained: bool, arch: dict[str, Any], **kwargs: Any) -> IsotropicNet:
    args = dict(block="convnext", ls_init_value=None, **arch)
    return _create(variant, pretrained, **dict(args, **kwargs))


@register_model
def convnext_iso_small(pretrained: bool = False, **kwargs: Any) -> IsotropicNet:
    """ConvNeXt-S (iso.): dim 384, 18 blocks (paper Table 2: 22 M params, 4.3 G FLOPs)."""
    return _convnext_iso("convnext_iso_small", pretrained, dict(depth=18, dim=384), **kwargs)


@register_model
def convnext_iso_base(pretrained: bool = False, **kwargs: Any) -> IsotropicNet:
    """ConvNeXt-B (iso.): dim 768, 18 blocks (paper Table 2: 87 M params, 16.9 G FLOPs)."""
    return _convnext_iso("convnext_iso_base", pretrained, dict(depth=18, dim=768), **kwargs)


@register_model
def convnext_iso_large(pretrained: bool = False, **kwargs: Any) -> IsotropicNet:
    """ConvNeXt-L (iso.): dim 1024, 36 blocks (paper Table 2: 306 M params, 59.7 G FLOPs)."""
    return _convnext_iso("convnext_iso_large", pretrained, dict(depth=36, dim=1024), **kwargs)


@register_model
def inceptionnext_iso_small(pretrained: bool = False, **kwargs: Any) -> IsotropicNet:
    """InceptionNeXt-S (iso.): dim 384, 18 MetaNeXt blocks (paper Table 5: 22 M params, 4.2 G MACs)."""
    args = dict(block="inceptionnext", depth=18, dim=384, ls_init_value=1e-6)
    return _create("inceptionnext_iso_small", pretrained, **dict(args, **kwargs))
