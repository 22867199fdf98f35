"""HaloNet H0-H7: the paper's family of local self-attention ResNets, as timm ByobNet configurations.

Paper: "Scaling Local Self-Attention for Parameter Efficient Visual Backbones", Vaswani et al.,
arXiv:2103.12731. The authors released no code; timm's ``byoanet.py`` implements HaloNet-H1
(``halonet_h1``) with its :class:`~timm.layers.HaloAttn` (blocked local attention with a halo and
relative position logits) inside ByobNet's ResNet-like bottleneck.

The family is parameterised by the paper's table: query block size ``b``, halo size ``h``, value
multiplier ``rv``, bottleneck output multiplier ``rb``, depth of the third stage ``l3``, width ``df`` of
a final 1x1 convolution (none for H0-H2) and the image size. Every stage is a stack of halo-attention
bottlenecks: 1x1 conv to the base width (64, 128, 256, 512), halo attention whose queries and keys
keep the base width and whose values (and output) are ``rv`` times wider, 1x1 conv to ``rb`` times
the base width, residual add; stages of depth 3, 3, ``l3``, 3, stride 1, 2, 2, 2 after a 7x7/2 conv +
max-pool stem. timm's ``SelfAttnBlock`` ties the value width to the bottleneck width, which is the
paper's block only for ``rv = 1`` (H0-H4); :class:`HaloBottleneck` below composes the same timm
layers with ``dim_out = rv * width`` so that H5-H7 match too (see the paper card for the counts).
Its module names are those of ``SelfAttnBlock``, so HaloNet-H1 built here has timm's ``halonet_h1``
state dict, key for key.

Feature maps whose side is not a multiple of the block size (H7 at the paper's 600 x 600 meets 75 x 75
and 38 x 38) are zero-padded at the bottom/right before the attention and cropped after it; this
only changes a forward that timm's ``HaloAttn`` would reject.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, make_divisible
from timm.models import build_model_with_cfg, register_model
from timm.models._registry import generate_default_cfgs
from timm.models.byobnet import ByoBlockCfg, ByobNet, ByoModelCfg, LayerFn, create_shortcut

from archzoo.checkpoint import unwrap_state_dict

__all__ = ["HaloBottleneck", "HALONET_TABLE", "halonet_cfg", "checkpoint_filter_fn"]

# The paper's HaloNet family table: b, h, rv, rb, l3, df (0 = no final 1x1 conv), image size.
HALONET_TABLE: dict[str, dict[str, Any]] = {
    "h0": dict(b=8, h=3, rv=1.0, rb=0.5, l3=7, df=0, img_size=256),
    "h1": dict(b=8, h=3, rv=1.0, rb=1.0, l3=10, df=0, img_size=256),
    "h2": dict(b=8, h=3, rv=1.0, rb=1.25, l3=11, df=0, img_size=256),
    "h3": dict(b=10, h=3, rv=1.0, rb=1.5, l3=12, df=1024, img_size=320),
    "h4": dict(b=12, h=2, rv=1.0, rb=3.0, l3=12, df=1280, img_size=384),
    "h5": dict(b=14, h=2, rv=2.5, rb=2.0, l3=23, df=1536, img_size=448),
    "h6": dict(b=8, h=4, rv=3.0, rb=2.75, l3=24, df=1536, img_size=512),
    "h7": dict(b=10, h=3, rv=4.0, rb=3.5, l3=26, df=2048, img_size=600),
}


class HaloBottleneck(nn.Module):
    """ResNet bottleneck with halo attention: 1x1 -> HaloAttn (values ``value_ratio`` x wider) -> 1x1.

    Same constructor contract and module names as timm's ``SelfAttnBlock`` (so ByobNet builds it and
    ``value_ratio=1`` gives exactly that block's parameters), plus padding to the attention block size.
    """

    pads_to_block_size = True  # any map size goes in: archzoo's input rules ask no multiple of the blocks

    def __init__(
            self,
            in_chs: int,
            out_chs: int,
            stride: int = 1,
            dilation: tuple[int, int] = (1, 1),
            bottle_ratio: float = 1.0,
            value_ratio: float = 1.0,
            group_size: int | None = None,
            downsample: str = "avg",
            linear_out: bool = False,
            post_attn_na: bool = True,
            feat_size: tuple[int, int] | None = None,
            layers: LayerFn | None = None,
            drop_block: Any = None,
            drop_path_rate: float = 0.0,
            device: Any = None,
            dtype: Any = None,
    ) -> None:
        super().__init__()
        assert layers is not None and layers.self_attn is not None
        dd = {"device": device, "dtype": dtype}
        mid_chs = make_divisible(out_chs * bottle_ratio)
        value_chs = make_divisible(mid_chs * value_ratio)
        self.shortcut = create_shortcut(downsample, in_chs, out_chs, stride=stride, dilation=dilation,
                                        apply_act=False, layers=layers, **dd)
        self.conv1_1x1 = layers.conv_norm_act(in_chs, mid_chs, 1, **dd)
        self.conv2_kxk = nn.Identity()
        # q/k keep the bottleneck width (qk_ratio is relative to dim_out), v and the output are wider
        self.self_attn = layers.self_attn(mid_chs, dim_out=value_chs, qk_ratio=mid_chs / value_chs,
                                          stride=stride, **dd)
        self.post_attn = layers.norm_act(value_chs, **dd) if post_attn_na else nn.Identity()
        self.conv3_1x1 = layers.conv_norm_act(value_chs, out_chs, 1, apply_act=False, **dd)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0.0 else nn.Identity()
        self.act = nn.Identity() if linear_out else layers.act(inplace=True)
        self.stride = stride

    def init_weights(self, zero_init_last: bool = False) -> None:
        if zero_init_last and self.shortcut is not None and getattr(self.conv3_1x1.bn, "weight", None) is not None:
            nn.init.zeros_(self.conv3_1x1.bn.weight)
        if hasattr(self.self_attn, "reset_parameters"):
            self.self_attn.reset_parameters()

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        block = self.self_attn.block_size
        H, W = x.shape[-2:]
        pad_h, pad_w = (-H) % block, (-W) % block
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
            x = self.self_attn(x)
            # the strided attention halves the padded map; keep ceil(H / stride) like the avg-pool shortcut
            s = self.stride
            return x[..., : (H + s - 1) // s, : (W + s - 1) // s]
        return self.self_attn(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.conv1_1x1(x)
        x = self.conv2_kxk(x)
        x = self._attend(x)
        x = self.post_attn(x)
        x = self.conv3_1x1(x)
        x = self.drop_path(x)
        if self.shortcut is not None:
            x = x + self.shortcut(shortcut)
        return self.act(x)


def halonet_cfg(b: int, h: int, rv: float, rb: float, l3: int, df: int = 0, num_heads: int = 8,
                **_: Any) -> ByoModelCfg:
    """A ByobNet configuration of one row of the paper's HaloNet table."""
    # ByobNet's create_block takes a registered name or a partial; a partial avoids adding to timm's registry
    block = partial(HaloBottleneck)
    stages = ((3, 64, 1), (3, 128, 2), (l3, 256, 2), (3, 512, 2))
    return ByoModelCfg(
        blocks=tuple(
            # out channels rb x base; bottle_ratio brings the 1x1 back to the base width
            ByoBlockCfg(type=block, d=d, c=int(c * rb), s=s, gs=0, br=1.0 / rb, block_kwargs=dict(value_ratio=rv))
            for d, c, s in stages
        ),
        stem_chs=64,
        stem_type="7x7",
        stem_pool="maxpool",
        num_features=df,
        self_attn_layer="halo",
        self_attn_kwargs=dict(block_size=b, halo_size=h, num_heads=num_heads),
    )


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm's ByobNet layout is this module's layout (no authors' checkpoints exist); unwrap only."""
    return unwrap_state_dict(state_dict, wrapper_keys=("model", "state_dict_ema", "state_dict"))


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ByobNet:
    row = HALONET_TABLE[variant.split("_")[-1]]
    return build_model_with_cfg(
        ByobNet, variant, pretrained, model_cfg=halonet_cfg(**row), pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(flatten_sequential=True), **kwargs)


def _cfg(size: int, **kwargs: Any) -> dict[str, Any]:
    return {
        "url": "", "num_classes": 1000, "input_size": (3, size, size), "pool_size": (-(-size // 32),) * 2,
        "crop_pct": 0.95, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv1.conv", "classifier": "head.fc", "paper_ids": "arXiv:2103.12731", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    f"halonet_{k}": _cfg(v["img_size"]) for k, v in HALONET_TABLE.items() if k != "h1"  # H1: timm's halonet_h1
})


@register_model
def halonet_h0(pretrained: bool = False, **kwargs: Any) -> ByobNet:
    """HaloNet-H0 (b 8, h 3, rv 1, rb 0.5, l3 7; 256 x 256)."""
    return _create("halonet_h0", pretrained, **kwargs)


@register_model
def halonet_h2(pretrained: bool = False, **kwargs: Any) -> ByobNet:
    """HaloNet-H2 (b 8, h 3, rv 1, rb 1.25, l3 11; 256 x 256)."""
    return _create("halonet_h2", pretrained, **kwargs)


@register_model
def halonet_h3(pretrained: bool = False, **kwargs: Any) -> ByobNet:
    """HaloNet-H3 (b 10, h 3, rv 1, rb 1.5, l3 12, df 1024; 320 x 320)."""
    return _create("halonet_h3", pretrained, **kwargs)


@register_model
def halonet_h4(pretrained: bool = False, **kwargs: Any) -> ByobNet:
    """HaloNet-H4 (b 12, h 2, rv 1, rb 3, l3 12, df 1280; 384 x 384)."""
    return _create("halonet_h4", pretrained, **kwargs)


@register_model
def halonet_h5(pretrained: bool = False, **kwargs: Any) -> ByobNet:
    """HaloNet-H5 (b 14, h 2, rv 2.5, rb 2, l3 23, df 1536; 448 x 448)."""
    return _create("halonet_h5", pretrained, **kwargs)


@register_model
def halonet_h6(pretrained: bool = False, **kwargs: Any) -> ByobNet:
    """HaloNet-H6 (b 8, h 4, rv 3, rb 2.75, l3 24, df 1536; 512 x 512)."""
    return _create("halonet_h6", pretrained, **kwargs)


@register_model
def halonet_h7(pretrained: bool = False, **kwargs: Any) -> ByobNet:
    """HaloNet-H7 (b 10, h 3, rv 4, rb 3.5, l3 26, df 2048; 600 x 600)."""
    return _create("halonet_h7", pretrained, **kwargs)
