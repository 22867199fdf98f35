"""HorNet: high-order spatial interactions with recursive gated convolutions (gnConv).

Paper: Rao, Zhao, Tang, Zhou, Lim, Lu, "HorNet: Efficient High-Order Spatial Interactions with
Recursive Gated Convolutions", NeurIPS 2022, arXiv:2207.14284.
Authors' code: https://github.com/raoyongming/HorNet (``hornet.py``).

A HorNet is ConvNeXt's macro design (4x4 patchify stem, LayerNorm + 2x2 stride-2 downsampling,
stages of depth (2, 3, 18, 2), dims (d, 2d, 4d, 8d), inverted-bottleneck MLP, layer scale,
pool -> LayerNorm -> linear head) whose 7x7 depthwise token mixer is replaced by gnConv:

* ``proj_in`` (1x1) gives ``2 * dim`` channels, split into ``p0`` (``dims[0]`` channels) and ``q``
  (``sum(dims)`` channels) with ``dims = [dim / 2**(n-1), ..., dim / 2, dim]``;
* ``q`` goes through one depthwise operator (a 7x7 depthwise conv, or the Global-Local Filter) and
  is scaled by ``s`` (1/3 in every released model), then split into ``n`` gates;
* ``p_{k+1} = pws[k](p_k) * gate_{k+1}`` (1x1 convs that double the width), ``proj_out(p_n)``.

The order n is 2, 3, 4, 5 in stages 1-4. The GF variants use the Global-Local Filter in stages 3
and 4: a 3x3 depthwise conv on one half of the channels, a learnable complex filter on the 2-D real
FFT of the other half, the two halves interleaved channel by channel, LayerNorm before and after.

Module names follow timm's ConvNeXt (``stem``, ``stages.i.downsample``, ``stages.i.blocks.j``,
``head.norm``, ``head.fc``); :func:`checkpoint_filter_fn` maps the authors' state dicts.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, Mlp, NormMlpClassifierHead, trunc_normal_
from timm.models import register_model
from timm.models._builder import build_model_with_cfg
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs
from torch import nn

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference
from archzoo.validation import InputRules, check_input

__all__ = [
    "HorNet",
    "HorNetBlock",
    "HorNetStage",
    "RecursiveGatedConv",
    "GlobalLocalFilter",
    "gnconv_dims",
    "checkpoint_filter_fn",
]

FilterSize = Optional[Tuple[int, int]]
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def gnconv_dims(dim: int, order: int) -> List[int]:
    """Channel widths of the ``order`` gnConv steps, narrowest first (the authors' floor division)."""
    if order < 1:
        raise ValueError(f"gnConv order must be >= 1, got {order}")
    dims = [dim // 2 ** i for i in range(order)][::-1]
    # proj_in's 2*dim outputs are split into dims[0] + sum(dims): that only adds up when dim is
    # divisible enough (the authors' code fails inside torch.split otherwise); say so at build time.
    if dims[0] < 1 or dims[0] + sum(dims) != 2 * dim:
        raise ValueError(
            f"gnConv of order {order} needs a width divisible by 2**{order - 1} = {2 ** (order - 1)}, "
            f"got {dim} (its gate widths would be {dims})"
        )
    return dims


class GlobalLocalFilter(nn.Module):
    """The GF depthwise operator: local 3x3 depthwise conv on the first half of the channels, a
    global filter (learnable complex weight on ``rfft2``) on the second half, interleaved.

    ``complex_weight`` is stored at ``(dim/2, h, w, 2)``; ``(h, w)`` is the ``rfft2`` size of the
    feature map it was trained for (14x8 for a 14x14 map) and is resized bilinearly
    (``align_corners=True``) to any other feature size, as the authors do.
    """

    def __init__(self, dim: int, h: int = 14, w: int = 8) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(
                f"GlobalLocalFilter splits its {dim} channels into two halves: the width must be even "
                "(the sum of the gnConv gate widths; e.g. base_dim=10 gives an odd sum)"
            )
        half = dim // 2
        self.dw = nn.Conv2d(half, half, kernel_size=3, padding=1, bias=False, groups=half)
        self.complex_weight = nn.Parameter(torch.empty(half, h, w, 2))
        self.pre_norm = LayerNorm2d(dim, eps=1e-6)
        self.post_norm = LayerNorm2d(dim, eps=1e-6)
        if not self.complex_weight.is_meta:  # init on meta tensors is a (slow) no-op
            trunc_normal_(self.complex_weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre_norm(x)
        x1, x2 = torch.chunk(x, 2, dim=1)
        x1 = self.dw(x1)

        B, C, H, W = x2.shape
        # The authors run the FFT in float32 whatever the model's dtype (half-precision FFTs only
        # take power-of-2 sizes); reproducing the cast keeps us bit-compatible in float64 too.
        x2 = torch.fft.rfft2(x2.to(torch.float32), dim=(2, 3), norm="ortho")
        weight = self.complex_weight
        if weight.dtype in _LOW_PRECISION:  # view_as_complex has no half/bfloat16 form
            weight = weight.float()
        if weight.shape[1:3] != x2.shape[2:4]:
            weight = F.interpolate(
                weight.permute(3, 0, 1, 2), size=x2.shape[2:4], mode="bilinear", align_corners=True
            ).permute(1, 2, 3, 0)
        x2 = x2 * torch.view_as_complex(weight.contiguous())
        x2 = torch.fft.irfft2(x2, s=(H, W), dim=(2, 3), norm="ortho")
        if x1.dtype in _LOW_PRECISION:
            x2 = x2.to(x1.dtype)

        # interleave: channel 2i is local channel i, channel 2i+1 is global channel i
        x = torch.stack((x1, x2), dim=2).reshape(B, 2 * C, H, W)
        return self.post_norm(x)


class RecursiveGatedConv(nn.Module):
    """gnConv: ``order`` recursive gated 1x1 convolutions around one depthwise operator."""

    def __init__(
        self,
        dim: int,
        order: int = 5,
        scale: float = 1.0,
        filter_size: FilterSize = None,
        kernel_size: int = 7,
    ) -> None:
        super().__init__()
        self.order = order
        self.dims = gnconv_dims(dim, order)
        self.scale = scale
        total = sum(self.dims)
        self.proj_in = nn.Conv2d(dim, 2 * dim, kernel_size=1)
        if filter_size is None:
            self.dwconv: nn.Module = nn.Conv2d(
                total, total, kernel_size=kernel_size, padding=(kernel_size - 1) // 2, groups=total, bias=True
            )
        else:
            self.dwconv = GlobalLocalFilter(total, *filter_size)
        self.proj_out = nn.Conv2d(dim, dim, kernel_size=1)
        self.pws = nn.ModuleList(nn.Conv2d(self.dims[i], self.dims[i + 1], kernel_size=1) for i in range(order - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj_in(x)
        p, q = torch.split(x, (self.dims[0], sum(self.dims)), dim=1)
        gates = torch.split(self.dwconv(q) * self.scale, self.dims, dim=1)
        x = p * gates[0]
        for i, pw in enumerate(self.pws):
            x = pw(x) * gates[i + 1]
        return self.proj_out(x)


class HorNetBlock(nn.Module):
    """LN -> gnConv -> layer scale -> residual; LN -> MLP (x4, GELU) -> layer scale -> residual."""

    def __init__(
        self,
        dim: int,
        order: int,
        scale: float = 1.0 / 3.0,
        filter_size: FilterSize = None,
        kernel_size: int = 7,
        mlp_ratio: float = 4.0,
        ls_init_value: Optional[float] = 1e-6,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim, eps=1e-6)
        self.gnconv = RecursiveGatedConv(dim, order, scale, filter_size, kernel_size)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(mlp_ratio * dim), act_layer=nn.GELU)
        use_ls = ls_init_value is not None and ls_init_value > 0  # the authors disable it with <= 0
        self.gamma1 = nn.Parameter(ls_init_value * torch.ones(dim)) if use_ls else None
        self.gamma2 = nn.Parameter(ls_init_value * torch.ones(dim)) if use_ls else None
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gnconv(self.norm1(x))
        if self.gamma1 is not None:
            y = self.gamma1.view(-1, 1, 1) * y
        x = x + self.drop_path(y)

        y = self.mlp(self.norm2(x.permute(0, 2, 3, 1)))  # channels last for the linear layers
        if self.gamma2 is not None:
            y = self.gamma2 * y
        return x + self.drop_path(y.permute(0, 3, 1, 2))


class HorNetStage(nn.Module):
    """Optional downsampling (LN + 2x2 stride-2 conv) followed by ``depth`` HorNet blocks."""

    def __init__(
        self,
        in_dim: int,
        dim: int,
        depth: int,
        order: int,
        downsample: bool = True,
        drop_path_rates: Sequence[float] = (),
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        self.grad_checkpointing = False
        if downsample:
            self.downsample: nn.Module = nn.Sequential(
                LayerNorm2d(in_dim, eps=1e-6), nn.Conv2d(in_dim, dim, kernel_size=2, stride=2)
            )
        else:
            self.downsample = nn.Identity()
        rates = list(drop_path_rates) or [0.0] * depth
        self.blocks = nn.Sequential(*[HorNetBlock(dim, order, drop_path=rates[j], **block_kwargs) for j in range(depth)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class HorNet(nn.Module):
    """HorNet backbone and classifier (timm interface).

    Args:
        in_chans: input channels.
        num_classes: classifier outputs (0: no classifier).
        global_pool: pooling type of the head ('avg' as the authors; '' keeps the map).
        depths: blocks per stage.
        base_dim: width of stage 1; stage widths are (d, 2d, 4d, 8d) unless ``dims`` is given.
        dims: explicit stage widths (overrides ``base_dim``).
        orders: gnConv order per stage (the paper's 2, 3, 4, 5).
        scale: the factor ``s`` applied to the depthwise output (1/3 in the paper's models).
        filter_sizes: per stage, None for the 7x7 depthwise conv, or the stored ``(h, w)`` size of
            the Global-Local Filter's complex weight (the ``rfft2`` size of the feature map it was
            trained at, e.g. (14, 8) for stage 3 at 224 input).
        kernel_size: depthwise kernel of the non-GF stages.
        mlp_ratio: MLP expansion.
        ls_init_value: layer-scale init (None or <= 0 disables layer scale, as the authors' 0).
        head_init_scale: scale of the classifier's initial weights.
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, linear over all blocks (as the authors).
        uniform_init: Xavier-uniform init of convs/linears instead of truncated normal (authors' flag).
    """

    min_input_size = 32  # total stride: 4x4 stem then three 2x2 stride-2 downsamplings

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        depths: Sequence[int] = (2, 3, 18, 2),
        base_dim: int = 64,
        dims: Optional[Sequence[int]] = None,
        orders: Union[int, Sequence[int]] = (2, 3, 4, 5),
        scale: float = 1.0 / 3.0,
        filter_sizes: Sequence[FilterSize] = (None, None, None, None),
        kernel_size: int = 7,
        mlp_ratio: float = 4.0,
        ls_init_value: Optional[float] = 1e-6,
        head_init_scale: float = 1.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        uniform_init: bool = False,
    ) -> None:
        super().__init__()
        num_stages = len(depths)
        dims = list(dims) if dims is not None else [base_dim * 2 ** i for i in range(num_stages)]
        orders = [orders] * num_stages if isinstance(orders, int) else list(orders)
        filter_sizes = [tuple(f) if f is not None else None for f in filter_sizes]
        if not (len(dims) == len(orders) == len(filter_sizes) == num_stages):
            raise ValueError(
                f"depths, dims, orders and filter_sizes need one entry per stage, got {len(depths)}, "
                f"{len(dims)}, {len(orders)}, {len(filter_sizes)}"
            )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate

        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, dims[0], kernel_size=4, stride=4), LayerNorm2d(dims[0], eps=1e-6)
        )
        total = sum(depths)
        # the authors' linear stochastic-depth schedule over all blocks (plain Python: no tensors
        # at build time, so the model also builds on the meta device)
        rates = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        stages, self.feature_info, cur = [], [], 0
        for i in range(num_stages):
            stages.append(HorNetStage(
                dims[i - 1] if i else dims[0], dims[i], depths[i], orders[i], downsample=i > 0,
                drop_path_rates=rates[cur:cur + depths[i]], scale=scale, filter_size=filter_sizes[i],
                kernel_size=kernel_size, mlp_ratio=mlp_ratio, ls_init_value=ls_init_value,
            ))
            cur += depths[i]
            self.feature_info.append(dict(num_chs=dims[i], reduction=4 * 2 ** i, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = dims[-1]
        # pool -> LayerNorm -> linear, the authors' (and ConvNeXt's) head order
        self.head = NormMlpClassifierHead(
            self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate,
            norm_layer=partial(LayerNorm2d, eps=1e-6),
        )

        self.apply(partial(_init_weights, uniform=uniform_init))
        if isinstance(self.head.fc, nn.Linear) and not self.head.fc.weight.is_meta:
            self.head.fc.weight.data.mul_(head_init_scale)
            self.head.fc.bias.data.mul_(head_init_scale)

    # ---- timm interface -------------------------------------------------------------------------
    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(
            stem=r"^stem",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for s in self.stages:
            s.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        # the authors decay every parameter of 2+ dims (complex_weight included); 1-D ones are
        # excluded by timm's optimizer factory as by theirs
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        self.head.reset(num_classes, global_pool)

    @property
    def input_rules(self) -> InputRules:
        """The inputs HorNet takes (checked by its forward, and by archzoo's pre-hook)."""
        return InputRules(channels=self.in_chans, min_size=self.min_input_size,
                          min_size_reason="4x4 stem and three stride-2 downsamplings")

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stage outputs (NCHW) at the stages in ``indices`` (all 4 by default). ``norm`` has
        nothing to do: HorNet's only final norm sits in the head, after pooling."""
        if output_fmt != "NCHW":
            raise ValueError(f"HorNet's intermediates are NCHW, got output_fmt={output_fmt!r}")
        check_input(self, x)
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        x = self.stem(x)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[: max_index + 1]
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self,
        indices: Union[int, List[int]] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        prune_end = max_index < len(self.feature_info) - 1
        if prune_end:
            # the head's norm is sized for the last stage: it goes with the pruned stages
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or prune_end or prune_norm:
            self.num_classes = 0
            self.head.reset(0, "", reset_other=True, in_features=self.num_features)
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x = self.stem(x)
        return self.stages(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=True) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(module: nn.Module, uniform: bool = False) -> None:
    # on the meta device there is nothing to initialise, and trunc_normal_ is slow there
    if isinstance(module, (nn.Conv2d, nn.Linear)) and not module.weight.is_meta:
        if uniform:
            nn.init.xavier_uniform_(module.weight)
        else:
            trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# ---- the authors' checkpoints ---------------------------------------------------------------------
_KEY_RULES = (
    (re.compile(r"^downsample_layers\.0\."), "stem."),
    (re.compile(r"^downsample_layers\.(\d+)\."), r"stages.\1.downsample."),
    (re.compile(r"^stages\.(\d+)\.(\d+)\."), r"stages.\1.blocks.\2."),
    (re.compile(r"\.pwconv1\."), ".mlp.fc1."),
    (re.compile(r"\.pwconv2\."), ".mlp.fc2."),
    (re.compile(r"^norm\."), "head.norm."),
    (re.compile(r"^head\.(weight|bias)$"), r"head.fc.\1"),
)


def checkpoint_filter_fn(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """Map a state dict of the authors' ``hornet.py`` (raoyongming/HorNet) onto :class:`HorNet`.

    Unwraps ``{'model': ...}`` training checkpoints, renames keys (``downsample_layers.0`` -> ``stem``,
    ``downsample_layers.i`` -> ``stages.i.downsample``, ``stages.i.j`` -> ``stages.i.blocks.j``,
    ``pwconv1/2`` -> ``mlp.fc1/2``, ``norm``/``head`` -> ``head.norm``/``head.fc``) and, like the
    authors' fine-tuning code, resizes a GF ``complex_weight`` stored at another size (e.g. a 224
    checkpoint into a 384 model). archzoo's own state dicts pass through unchanged.
    """
    state_dict = unwrap_state_dict(state_dict, wrapper_keys=("model", "state_dict", "model_ema"))
    own = model.state_dict()
    out: Dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for pattern, repl in _KEY_RULES:
            key = pattern.sub(repl, key)
        if key.endswith("complex_weight") and key in own and value.shape != own[key].shape:
            value = F.interpolate(
                value.permute(3, 0, 1, 2), size=tuple(own[key].shape[1:3]), mode="bilinear", align_corners=True
            ).permute(1, 2, 3, 0).contiguous()
        out[key] = value
    return out


# ---- reference vectors (shared/reference/hornet_a, hornet_gf_a) -----------------------------------
def _from_authors_config(config: dict, meta: dict) -> HorNet:
    """The archzoo model equal to the authors' ``HorNet(...)`` call recorded in a reference file."""
    orders = config.get("gnconv_orders", 5)  # the authors' HorNet default: gnconv(order=5, s=1.0)
    filter_sizes = []
    for i in range(4):
        hw = config.get(f"stage{i + 1}_gf_hw")
        if hw is None and config.get("gf_hw") is not None:
            hw = config["gf_hw"][i]
        filter_sizes.append(tuple(hw) if hw is not None else None)
    return HorNet(
        in_chans=config.get("in_chans", 3),
        num_classes=config.get("num_classes", 1000),
        depths=config.get("depths", (3, 3, 9, 3)),
        base_dim=config.get("base_dim", 96),
        orders=orders,
        scale=config.get("s", 1.0),
        filter_sizes=filter_sizes,
        ls_init_value=config.get("layer_scale_init_value", 1e-6),
    )


register_reference("hornet")(_from_authors_config)
register_reference("hornet_gf")(_from_authors_config)


# ---- variants -------------------------------------------------------------------------------------
def _cfg(**kwargs: Any) -> Dict[str, Any]:
    return {
        "url": "",
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.0", "classifier": "head.fc",
        "license": "mit", "paper_ids": "arXiv:2207.14284", "origin_url": "https://github.com/raoyongming/HorNet",
        **kwargs,
    }


_384 = dict(input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0)  # authors warp, no crop, at 384
# The released HorNet-L checkpoints are ImageNet-22K models; the manifest of their state dicts has a
# 21841-class head (see the paper card for the head size the README's parameter counts imply).
_22K = dict(num_classes=21841)

default_cfgs = generate_default_cfgs({
    "hornet_tiny_7x7.in1k": _cfg(),
    "hornet_tiny_gf.in1k": _cfg(),
    "hornet_small_7x7.in1k": _cfg(),
    "hornet_small_gf.in1k": _cfg(),
    "hornet_base_7x7.in1k": _cfg(),
    "hornet_base_gf.in1k": _cfg(),
    "hornet_base_gf_img384": _cfg(**_384),
    "hornet_large_7x7.in22k": _cfg(**_22K),
    "hornet_large_gf.in22k": _cfg(**_22K),
    "hornet_large_gf_img384.in22k": _cfg(**_22K, **_384),
})

_GF_224: Tuple[FilterSize, ...] = (None, None, (14, 8), (7, 4))  # rfft2 sizes of 14x14 and 7x7 maps
_GF_384: Tuple[FilterSize, ...] = (None, None, (24, 13), (12, 7))  # ... of 24x24 and 12x12 maps


def _create_hornet(variant: str, pretrained: bool = False, **kwargs: Any) -> HorNet:
    return build_model_with_cfg(
        HorNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), flatten_sequential=True),
        **kwargs,
    )


def _hornet(variant: str, pretrained: bool, arch: Dict[str, Any], **kwargs: Any) -> HorNet:
    # every released model: depths (2, 3, 18, 2), orders 2-5, s = 1/3; kwargs may override any of it
    args = dict(depths=(2, 3, 18, 2), orders=(2, 3, 4, 5), scale=1.0 / 3.0, **arch)
    return _create_hornet(variant, pretrained, **dict(args, **kwargs))


@register_model
def hornet_tiny_7x7(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-T (7x7): base width 64, 7x7 depthwise gnConv in every stage."""
    return _hornet("hornet_tiny_7x7", pretrained, dict(base_dim=64), **kwargs)


@register_model
def hornet_tiny_gf(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-T (GF): base width 64, Global-Local Filter in stages 3 and 4."""
    return _hornet("hornet_tiny_gf", pretrained, dict(base_dim=64, filter_sizes=_GF_224), **kwargs)


@register_model
def hornet_small_7x7(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-S (7x7): base width 96."""
    return _hornet("hornet_small_7x7", pretrained, dict(base_dim=96), **kwargs)


@register_model
def hornet_small_gf(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-S (GF): base width 96, Global-Local Filter in stages 3 and 4."""
    return _hornet("hornet_small_gf", pretrained, dict(base_dim=96, filter_sizes=_GF_224), **kwargs)


@register_model
def hornet_base_7x7(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-B (7x7): base width 128."""
    return _hornet("hornet_base_7x7", pretrained, dict(base_dim=128), **kwargs)


@register_model
def hornet_base_gf(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-B (GF): base width 128, Global-Local Filter in stages 3 and 4."""
    return _hornet("hornet_base_gf", pretrained, dict(base_dim=128, filter_sizes=_GF_224), **kwargs)


@register_model
def hornet_base_gf_img384(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-B (GF) with filters sized for 384x384 input (defined in the authors' code)."""
    return _hornet("hornet_base_gf_img384", pretrained, dict(base_dim=128, filter_sizes=_GF_384), **kwargs)


@register_model
def hornet_large_7x7(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-L (7x7): base width 192, ImageNet-22K pre-training."""
    return _hornet("hornet_large_7x7", pretrained, dict(base_dim=192), **kwargs)


@register_model
def hornet_large_gf(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-L (GF): base width 192, Global-Local Filter in stages 3 and 4, ImageNet-22K."""
    return _hornet("hornet_large_gf", pretrained, dict(base_dim=192, filter_sizes=_GF_224), **kwargs)


@register_model
def hornet_large_gf_img384(pretrained: bool = False, **kwargs: Any) -> HorNet:
    """HorNet-L (GF) fine-tuned at 384x384 on ImageNet-22K (filters sized for 384 input)."""
    return _hornet("hornet_large_gf_img384", pretrained, dict(base_dim=192, filter_sizes=_GF_384), **kwargs)
