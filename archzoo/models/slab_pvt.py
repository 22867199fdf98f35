"""SLAB-PVT: Pyramid Vision Transformer with simplified linear attention and PRepBN (Guo et al., "SLAB:
Efficient Transformers with Simplified Linear Attention and Progressive Re-parameterized Batch
Normalization", ICML 2024, arXiv 2405.11582).

Authors' code: https://github.com/xinghaochen/SLAB (``classification/models/slab_pvt.py``, configs
``cfgs/slab_pvt_{t,s,m}.yaml`` with ``MODEL.LA.PVT_LA_SR_RATIOS = 1111``); this module follows it at
commit f58db00 and loads its checkpoints through :func:`checkpoint_filter_fn` (module names are the
authors': ``patch_embed{i}``, ``pos_embed{i}``, ``block{i}``).

Each stage is ``L`` (simplified linear attention, spatial reduction ``la_sr_ratios[i]``, a digit
string) or ``S`` (PVT's softmax spatial-reduction attention, ``sr_ratios[i]``), from ``attn_type``.
Details kept from the authors' code: the linear attention here runs in the input dtype (no float32
cast); with a reduction > 1 the depthwise-conv branch sees ``v`` linearly interpolated along the
tokens back to the full length; the positional encoding of k has ``num_patches / sr^2`` tokens; there
is no final norm (the head averages the last stage's tokens); norms are PRepBN with LayerNorm eps 1e-6
and step 300000, including the one after each spatial-reduction conv.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, to_2tuple, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.models._slab_layers import (
    SlabHead, SlabModelMixin, finalize_cfg, fold_into_conv_input, fold_into_conv_output, fold_into_linear, heads_merge,
    linear_attention, norm_affine, prepbn,
)
from archzoo.reference import register_reference

__all__ = ["SlabPyramidVisionTransformer", "checkpoint_filter_fn"]


class _SRAttentionBase(nn.Module):
    """q from the tokens; k, v from the tokens or from a strided conv + PRepBN of their map."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, proj_drop: float, sr_ratio: int, norm_layer) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} should be divided by num_heads {num_heads}")
        self.num_heads, self.sr_ratio = num_heads, sr_ratio
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = norm_layer(dim)

    def _kv_input(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        if self.sr_ratio == 1:
            return x
        B, N, C = x.shape
        x = self.sr(x.transpose(1, 2).reshape(B, C, H, W)).flatten(2).transpose(1, 2)
        return self.norm(x)

    @torch.no_grad()
    def fold_input_affine(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """The block's norm1 feeds q and (the reduction conv or) kv: fold it into both."""
        self.q = fold_into_linear(self.q, scale, shift)
        if self.sr_ratio > 1:
            self.sr = fold_into_conv_input(self.sr, scale, shift)  # kernel = stride, no padding: exact
        else:
            self.kv = fold_into_linear(self.kv, scale, shift)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the norm after the reduction conv into kv."""
        if self.sr_ratio > 1:
            ab = norm_affine(self.norm)
            if ab is not None:
                self.kv = fold_into_linear(self.kv, *ab)
                self.norm = nn.Identity()


class Attention(_SRAttentionBase):
    """PVT's softmax attention with spatial reduction of k and v (the S stages)."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, qk_scale: float | None = None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, sr_ratio: int = 1, norm_layer=None) -> None:
        super().__init__(dim, num_heads, qkv_bias, proj_drop, sr_ratio, norm_layer)
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_drop = nn.Dropout(attn_drop)
        self.fused_attn = use_fused_attn()

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        h = self.num_heads
        q = self.q(x).reshape(B, N, h, C // h).transpose(1, 2)
        k, v = self.kv(self._kv_input(x, H, W)).reshape(B, -1, 2, h, C // h).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0,
                                               scale=self.scale)
        else:
            attn = self.attn_drop(((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1))
            x = attn @ v
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))


class PvtLinearAttention(_SRAttentionBase):
    """Simplified linear attention with optional spatial reduction of k and v (the L stages)."""

    def __init__(self, dim: int, num_patches: int, num_heads: int = 8, qkv_bias: bool = False,
                 proj_drop: float = 0.0, sr_ratio: int = 1, kernel_size: int = 5, norm_layer=None) -> None:
        super().__init__(dim, num_heads, qkv_bias, proj_drop, sr_ratio, norm_layer)
        head_dim = dim // num_heads
        self.dwc = nn.Conv2d(head_dim, head_dim, kernel_size, padding=kernel_size // 2, groups=head_dim)
        self.positional_encoding = nn.Parameter(torch.zeros(1, num_patches // (sr_ratio * sr_ratio), dim))

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        B, N, C = x.shape
        q = self.q(x)
        k, v = self.kv(self._kv_input(x, H, W)).reshape(B, -1, 2, C).unbind(2)
        x, v = linear_attention(q, k + self.positional_encoding, v, self.num_heads, upcast=False)
        if self.sr_ratio > 1:  # back to N tokens for the conv branch, linearly along the token axis
            v = F.interpolate(v.transpose(1, 2), size=N, mode="linear").transpose(1, 2)
        side = math.isqrt(N)  # the authors' square grid
        fmap = v.reshape(-1, side, side, v.shape[-1]).permute(0, 3, 1, 2)
        x = x + self.dwc(fmap).flatten(2).transpose(1, 2)
        return self.proj_drop(self.proj(heads_merge(x, self.num_heads)))


class Block(nn.Module):
    def __init__(self, dim: int, num_patches: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 norm_layer=None, sr_ratio: int = 1, kernel_size: int = 5, attn_type: str = "L") -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        if attn_type == "L":
            self.attn = PvtLinearAttention(dim, num_patches, num_heads, qkv_bias, drop, sr_ratio, kernel_size, norm_layer)
        elif attn_type == "S":
            self.attn = Attention(dim, num_heads, qkv_bias, qk_scale, attn_drop, drop, sr_ratio, norm_layer)
        else:
            raise ValueError(f"attn_type must be 'L' or 'S', got {attn_type!r}")
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), H, W))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold norm1 into q and the reduction conv (or kv), norm2 into mlp.fc1."""
        ab = norm_affine(self.norm1)
        if ab is not None:
            self.attn.fold_input_affine(*ab)
            self.norm1 = nn.Identity()
        ab = norm_affine(self.norm2)
        if ab is not None:
            self.mlp.fc1 = fold_into_linear(self.mlp.fc1, *ab)
            self.norm2 = nn.Identity()


class PatchEmbed(nn.Module):
    """Patch conv (kernel = stride) of an NCHW map, then PRepBN over the tokens."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, norm_layer) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = norm_layer(embed_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)
        H, W = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), (H, W)

    @torch.no_grad()
    def reparameterize(self) -> None:
        ab = norm_affine(self.norm)
        if ab is not None:
            self.proj = fold_into_conv_output(self.proj, *ab)
            self.norm = nn.Identity()


class SlabPyramidVisionTransformer(SlabModelMixin, nn.Module):
    """SLAB-PVT with timm's interface (authors' ``PyramidVisionTransformer`` with ``linearnorm``).

    Defaults are the authors' class defaults; their released models pass the arguments of the
    ``slab_pvt_*`` functions with ``la_sr_ratios='1111'``. ``prepbn_step`` / ``prepbn_warm``: the
    PRepBN schedule in training forward calls (300000, 0).
    """

    def __init__(
            self,
            img_size: int = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dims: Sequence[int] = (64, 128, 256, 512),
            num_heads: Sequence[int] = (1, 2, 4, 8),
            mlp_ratios: Sequence[float] = (4, 4, 4, 4),
            qkv_bias: bool = False,
            qk_scale: float | None = None,
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            depths: Sequence[int] = (3, 4, 6, 3),
            sr_ratios: Sequence[int] = (8, 4, 2, 1),
            la_sr_ratios: str | Sequence[int] = "8421",
            num_stages: int | None = None,
            kernel_size: int = 5,
            attn_type: str | None = "LLLL",
            prepbn_step: int = 300000,
            prepbn_warm: int = 0,
            focusing_factor: int = 3,
    ) -> None:
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        n = num_stages or len(depths)
        attn_type = "LLLL" if attn_type is None else attn_type
        la_sr = [int(c) for c in str(la_sr_ratios)] if isinstance(la_sr_ratios, (str, int)) else list(la_sr_ratios)
        if any(len(s) < n for s in (embed_dims, num_heads, mlp_ratios, depths, sr_ratios, la_sr, attn_type)):
            raise ValueError(f"every per-stage argument needs {n} values")
        norm_layer = prepbn(prepbn_step, ln_eps=1e-6, warm=prepbn_warm)
        self.img_size = to_2tuple(img_size)
        self.num_classes, self.global_pool, self.in_chans = num_classes, global_pool, in_chans
        self.num_stages, self.depths = n, list(depths[:n])
        self.num_features = self.head_hidden_size = embed_dims[n - 1]
        dpr = torch.linspace(0, drop_path_rate, sum(self.depths), device="cpu").tolist()
        grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.feature_info, cur, reduction = [], 0, patch_size
        for i in range(n):
            if i > 0:
                grid, reduction = (grid[0] // 2, grid[1] // 2), reduction * 2
            num_patches = grid[0] * grid[1]
            setattr(self, f"patch_embed{i + 1}", PatchEmbed(patch_size if i == 0 else 2,
                                                            in_chans if i == 0 else embed_dims[i - 1],
                                                            embed_dims[i], norm_layer))
            setattr(self, f"pos_embed{i + 1}", nn.Parameter(torch.zeros(1, num_patches, embed_dims[i])))
            setattr(self, f"pos_drop{i + 1}", nn.Dropout(drop_rate))
            t = attn_type[i]
            if t not in ("L", "S"):
                raise ValueError(f"attention type {t!r} in {attn_type!r} is not L or S")
            sr = sr_ratios[i] if t == "S" else la_sr[i]
            setattr(self, f"block{i + 1}", nn.ModuleList([
                Block(embed_dims[i], num_patches, num_heads[i], mlp_ratios[i], qkv_bias, qk_scale, drop_rate,
                      attn_drop_rate, dpr[cur + j], norm_layer, sr, kernel_size, t)
                for j in range(self.depths[i])
            ]))
            cur += self.depths[i]
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=reduction, module=f"block{i + 1}"))
        self.head = SlabHead(nn.Identity(), self.num_features, num_classes)  # no final norm
        self.grad_checkpointing = False
        self.init_weights()

    def init_weights(self) -> None:
        """The authors' initialisation: trunc-normal(0.02) pos_embeds and Linear weights, zero biases,
        LayerNorm 1/0; SLA positional encodings stay zero."""
        if next(self.parameters()).is_meta:
            return
        for i in range(self.num_stages):
            trunc_normal_(getattr(self, f"pos_embed{i + 1}"), std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return set()  # the authors' list names only a class token that SLAB-PVT does not have

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^patch_embed1|pos_embed1", blocks=[(r"^(?:patch_embed|pos_embed|block)(\d+)", None)])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Note: recomputation runs each block's PRepBNs again, advancing their schedule twice per step."""
        self.grad_checkpointing = enable

    def _stage(self, i: int, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        x, (H, W) = getattr(self, f"patch_embed{i + 1}")(x)
        # the authors interpolate pos_embed to (H, W), an identity at the fixed input size
        x = getattr(self, f"pos_drop{i + 1}")(x + getattr(self, f"pos_embed{i + 1}"))
        for blk in getattr(self, f"block{i + 1}"):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, H, W)
            else:
                x = blk(x, H, W)
        return x, H, W

    @staticmethod
    def _to_map(x: torch.Tensor, H: int, W: int) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], -1, H, W)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens of the last stage, (B, H*W, C)."""
        for i in range(self.num_stages):
            x, H, W = self._stage(i, x)
            if i != self.num_stages - 1:
                x = self._to_map(x, H, W)
        return x

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs as NCHW maps (there is no final norm, so ``norm`` changes nothing)."""
        if output_fmt != "NCHW":
            raise ValueError("SLAB-PVT intermediates are NCHW maps")
        take, max_index = feature_take_indices(self.num_stages, indices)
        stages = max_index + 1 if stop_early or intermediates_only else self.num_stages
        out = []
        for i in range(stages):
            x, H, W = self._stage(i, x)
            if i in take:
                out.append(self._to_map(x, H, W))
            if i != self.num_stages - 1:
                x = self._to_map(x, H, W)
        if intermediates_only:
            return out
        return x, out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(self.num_stages, indices)
        for i in range(max_index + 1, self.num_stages):
            for name in (f"patch_embed{i + 1}", f"pos_drop{i + 1}", f"block{i + 1}", f"pos_embed{i + 1}"):
                delattr(self, name)
        self.num_stages = max_index + 1
        if prune_head:
            self.reset_classifier(0, "")
        return take


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Authors' keys -> archzoo's: ``head.weight``/``head.bias`` -> ``head.fc.*``. archzoo keys pass."""
    out = {}
    for k, v in unwrap_state_dict(state_dict, wrapper_keys=("model",)).items():
        if k in ("head.weight", "head.bias"):
            k = "head.fc." + k.split(".")[-1]
        out[k] = v
    return out


@register_reference("slab_pvt")
def _reference_slab_pvt(config: dict, meta: dict) -> nn.Module:
    return SlabPyramidVisionTransformer(**config)


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> SlabPyramidVisionTransformer:
    n = len(kwargs.get("depths", (3, 4, 6, 3)))
    out_indices = kwargs.pop("out_indices", tuple(range(n)))
    return finalize_cfg(build_model_with_cfg(
        SlabPyramidVisionTransformer, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs))


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.875,
        "interpolation": "bicubic", "fixed_input_size": True, "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "patch_embed1.proj", "classifier": "head.fc",
        "paper_ids": "arXiv:2405.11582", "origin_url": "https://github.com/xinghaochen/SLAB", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "slab_pvt_t.in1k": _cfg("https://github.com/xinghaochen/SLAB/releases/download/ckpts/slab_pvt_tiny.pth"),
    "slab_pvt_s.in1k": _cfg(),
    "slab_pvt_m.in1k": _cfg(),
})

# slab_pvt_{tiny,small,medium} + cfgs/slab_pvt_{t,s,m}.yaml (LLLL, la_sr 1111, drop-path 0 / 0.1 / 0.3)
_PVT = dict(patch_size=4, embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), mlp_ratios=(8, 8, 4, 4),
            qkv_bias=True, sr_ratios=(8, 4, 2, 1), la_sr_ratios="1111", attn_type="LLLL")


@register_model
def slab_pvt_t(pretrained: bool = False, **kwargs: Any) -> SlabPyramidVisionTransformer:
    """SLAB-PVT-T (12.2 M params, 2.0 GMACs at 224); authors' ``slab_pvt_tiny``."""
    return _create("slab_pvt_t", pretrained, **dict(dict(_PVT, depths=(2, 2, 2, 2), drop_path_rate=0.0), **kwargs))


@register_model
def slab_pvt_s(pretrained: bool = False, **kwargs: Any) -> SlabPyramidVisionTransformer:
    """SLAB-PVT-S (21.7 M params, 4.0 GMACs at 224); authors' ``slab_pvt_small``."""
    return _create("slab_pvt_s", pretrained, **dict(dict(_PVT, depths=(3, 4, 6, 3), drop_path_rate=0.1), **kwargs))


@register_model
def slab_pvt_m(pretrained: bool = False, **kwargs: Any) -> SlabPyramidVisionTransformer:
    """SLAB-PVT-M (37.3 M params, 7.0 GMACs at 224); authors' ``slab_pvt_medium``."""
    return _create("slab_pvt_m", pretrained, **dict(dict(_PVT, depths=(3, 4, 18, 3), drop_path_rate=0.3), **kwargs))
