"""ResFormer: one plain ViT for every resolution (Tian et al., "ResFormer: Scaling ViTs with
Multi-Resolution Training", CVPR 2023, arXiv 2212.00776).

Authors' code: https://github.com/ruitian12/resformer (``image_classification/models.py``); this module
follows it at commit 33e2c09 and loads its checkpoints unchanged (module names are the authors').

A DeiT-like ViT (patch 16, class token) without a learned position table:

- global positional embedding (``pos_embed.embed_layer``): the DETR-style normalised 2-D sine-cosine
  table of the *current* token grid (temperature 1e4, scale 2*pi, eps 1e-6, ``dim/2`` channels per
  axis, y first), computed in float32 as the authors do, then a depthwise 3x3 conv; the class token
  gets zeros. It is added to the tokens after the patch embedding;
- local positional embedding inside every attention (``attn.get_v``): a depthwise 3x3 conv over the
  ``head_dim`` channels of V on the token grid, shared by the heads, added to ``attn @ v`` (zero for the
  class token); zero-initialised.

Both are defined on any grid, so one model runs at any resolution (the authors' code needs a square
grid; this one also takes rectangular inputs). Multi-resolution training with the scale-consistency
loss lives in :mod:`archzoo.methods.multires` (any timm-style model with a class token).
The authors' training forward returns ``(logits, distillation feature)``; here ``forward`` always
returns logits and the feature comes from ``forward_head(forward_features(x), pre_logits=True)``.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from functools import partial
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, lecun_normal_, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference

__all__ = ["ResFormer", "GlobalPosEmbed", "sincos_table", "checkpoint_filter_fn"]


def sincos_table(h: int, w: int, dim: int, temperature: float = 10000.0, scale: float = 2 * math.pi,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """The normalised 2-D sine-cosine table, (1, dim, h, w), in float32 (as the authors compute it):
    channels [0, dim/2) encode y, [dim/2, dim) encode x, each as interleaved sin/cos pairs."""
    half = dim // 2
    eps = 1e-6
    ys = torch.arange(1, h + 1, dtype=torch.float32, device=device)  # cumulative sum of a mask of ones
    xs = torch.arange(1, w + 1, dtype=torch.float32, device=device)
    ys = ys / (ys[-1:] + eps) * scale
    xs = xs / (xs[-1:] + eps) * scale
    k = torch.arange(half, dtype=torch.float32, device=device)
    freq = temperature ** (2 * torch.div(k, 2, rounding_mode="floor") / half)

    def encode(p: torch.Tensor) -> torch.Tensor:  # (n,) -> (n, half): sin on even, cos on odd channels
        a = p[:, None] / freq
        return torch.stack((a[:, 0::2].sin(), a[:, 1::2].cos()), dim=2).flatten(1)

    ey, ex = encode(ys), encode(xs)  # (h, half), (w, half)
    table = torch.cat((ey[:, None, :].expand(h, w, half), ex[None, :, :].expand(h, w, half)), dim=2)
    return table.permute(2, 0, 1).unsqueeze(0)


class GlobalPosEmbed(nn.Module):
    """Sine-cosine table of the current grid -> depthwise 3x3 conv; zeros for the prefix tokens."""

    def __init__(self, embed_dim: int, temperature: float = 10000.0, scale: float | None = None) -> None:
        super().__init__()
        if embed_dim % 4:
            raise ValueError(f"the 2-D sine-cosine embedding needs embed_dim divisible by 4, got {embed_dim}")
        self.temperature = temperature
        self.scale = 2 * math.pi if scale is None else scale
        self.embed_layer = nn.Conv2d(embed_dim, embed_dim, kernel_size=3, padding=1, groups=embed_dim)

    def forward(self, x: torch.Tensor, grid: tuple[int, int], num_prefix_tokens: int = 1) -> torch.Tensor:
        h, w = grid
        table = sincos_table(h, w, x.shape[-1], self.temperature, self.scale, device=x.device)
        pos = self.embed_layer(table.to(self.embed_layer.weight.dtype)).flatten(2).transpose(1, 2)
        pos = F.pad(pos, (0, 0, num_prefix_tokens, 0))  # class token: zero
        return x + pos.to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention plus the local positional embedding (depthwise conv of V)."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.get_v = nn.Conv2d(self.head_dim, self.head_dim, kernel_size=3, padding=1, groups=self.head_dim)

    def local_pos_embed(self, v: torch.Tensor, grid: tuple[int, int], num_prefix_tokens: int) -> torch.Tensor:
        B, H, N, D = v.shape
        p = v[:, :, num_prefix_tokens:].transpose(-2, -1).reshape(B * H, D, *grid)
        p = self.get_v(p).reshape(B, H, D, -1).transpose(-2, -1)
        return F.pad(p, (0, 0, num_prefix_tokens, 0))

    def forward(self, x: torch.Tensor, grid: tuple[int, int], num_prefix_tokens: int = 1) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            out = self.attn_drop(attn) @ v
        out = out + self.local_pos_embed(v, grid, num_prefix_tokens)
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(B, N, C)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0, act_layer: Callable[..., nn.Module] = nn.GELU,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(self, x: torch.Tensor, grid: tuple[int, int], num_prefix_tokens: int = 1) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), grid, num_prefix_tokens))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ResFormer(nn.Module):
    """ResFormer with timm's interface. Runs at any input at least ``patch_size`` on each side (the
    grid is ``floor(size / patch_size)``, as the authors' strided conv). ``img_size`` only sets the
    default configuration (the authors pass the list of training sizes; the first is used)."""

    def __init__(
            self,
            img_size: int | Sequence[int] = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "token",
            embed_dim: int = 768,
            depth: int = 12,
            num_heads: int = 12,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            representation_size: int | None = None,
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            norm_layer: Callable[[int], nn.Module] | None = None,
            act_layer: Callable[..., nn.Module] | None = None,
            weight_init: str = "",
    ) -> None:
        super().__init__()
        if global_pool not in ("token", "avg", ""):
            raise ValueError(f"global_pool must be 'token', 'avg' or '', got {global_pool!r}")
        if weight_init not in ("", "jax", "jax_nlhb", "nlhb"):
            raise ValueError(f"weight_init must be '', 'jax', 'jax_nlhb' or 'nlhb', got {weight_init!r}")
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        act_layer = act_layer or nn.GELU
        self.img_size = int(img_size if isinstance(img_size, int) else img_size[0])
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_prefix_tokens = 1
        self.embed_dim = embed_dim
        self.grad_checkpointing = False

        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.pos_embed = GlobalPosEmbed(embed_dim)
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
        self.blocks = nn.Sequential(*[
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i], act_layer, norm_layer)
            for i in range(depth)
        ])
        self.feature_info = [dict(num_chs=embed_dim, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)]
        self.norm = norm_layer(embed_dim)
        if representation_size:
            self.num_features = self.head_hidden_size = representation_size
            self.pre_logits = nn.Sequential(OrderedDict([("fc", nn.Linear(embed_dim, representation_size)), ("act", nn.Tanh())]))
        else:
            self.num_features = self.head_hidden_size = embed_dim
            self.pre_logits = nn.Identity()
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.min_input_size = patch_size
        self.init_weights(weight_init)

    def init_weights(self, mode: str = "") -> None:
        """The authors' (timm 0.5 ViT) initialisation: trunc-normal(0.02) class token and Linear weights
        (``jax``: xavier-uniform, lecun-normal convs, zero class token), zero head, LayerNorm 1/0,
        zero-initialised local positional embedding; other convs keep PyTorch's default."""
        if next(self.parameters()).is_meta:
            return
        jax = mode.startswith("jax")
        head_bias = -math.log(self.num_classes) if "nlhb" in mode and self.num_classes > 0 else 0.0
        if not jax:
            trunc_normal_(self.cls_token, std=0.02)
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear):
                if name.startswith("head"):
                    nn.init.zeros_(m.weight)
                    nn.init.constant_(m.bias, head_bias)
                elif name.startswith("pre_logits"):
                    lecun_normal_(m.weight)
                    nn.init.zeros_(m.bias)
                elif jax:
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.normal_(m.bias, std=1e-6) if "mlp" in name else nn.init.zeros_(m.bias)
                else:
                    trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
            elif jax and isinstance(m, nn.Conv2d):
                lecun_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():  # the authors zero the local positional embedding after all the above
            if isinstance(m, Attention):
                nn.init.zeros_(m.get_v.weight)
                nn.init.zeros_(m.get_v.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # the authors: every parameter whose name contains pos_embed, get_v or cls_token
        return {n for n, _ in self.named_parameters() if any(k in n for k in ("pos_embed", "get_v", "cls_token"))}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^cls_token|^pos_embed|^patch_embed", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            if global_pool not in ("token", "avg", ""):
                raise ValueError(f"global_pool must be 'token', 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.patch_embed(x)
        grid = (x.shape[-2], x.shape[-1])
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1).to(x.dtype), x.flatten(2).transpose(1, 2)), dim=1)
        return self.pos_drop(self.pos_embed(x, grid, self.num_prefix_tokens)), grid

    def _block(self, blk: nn.Module, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint(blk, x, grid, self.num_prefix_tokens)
        return blk(x, grid, self.num_prefix_tokens)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens (B, 1 + H*W, C), the class token first."""
        x, grid = self._embed(x)
        for blk in self.blocks:
            x = self._block(blk, x, grid)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "token":
            x = x[:, 0]
        elif self.global_pool == "avg":
            x = x[:, self.num_prefix_tokens:].mean(dim=1)  # the authors' 'gap' distillation target
        else:
            return x
        x = self.pre_logits(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Block outputs as NCHW maps of the patch tokens (``NLC``: all tokens); ``norm`` applies the
        final norm to each. Returns ``(final normalised tokens, intermediates)`` unless ``intermediates_only``."""
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError("output_fmt must be 'NCHW' or 'NLC'")
        take, max_index = feature_take_indices(len(self.blocks), indices)
        blocks = self.blocks[: max_index + 1] if stop_early or intermediates_only else self.blocks
        x, (h, w) = self._embed(x)
        out = []
        for i, blk in enumerate(blocks):
            x = self._block(blk, x, (h, w))
            if i in take:
                t = self.norm(x) if norm else x
                if output_fmt == "NCHW":
                    p = t[:, self.num_prefix_tokens:]
                    t = p.transpose(1, 2).reshape(p.shape[0], -1, h, w)
                out.append(t)
        if intermediates_only:
            return out
        return self.norm(x), out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.pre_logits = nn.Identity()
            self.reset_classifier(0, "")
        return take


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The authors' keys are archzoo's: strips ``module.`` and unwraps ``model``/``model_ema``; drops
    the unused ``head_res`` slot if present."""
    state_dict = unwrap_state_dict(state_dict, wrapper_keys=("model_ema", "model", "state_dict"))
    out = {}
    for k, v in state_dict.items():
        if k.startswith("head_res."):
            continue
        out[k] = v
    return out


_AUTHORS_KEYS = ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads", "mlp_ratio",
                 "qkv_bias", "representation_size", "drop_rate", "attn_drop_rate", "drop_path_rate", "weight_init")


@register_reference("resformer")
def _reference_resformer(config: dict, meta: dict) -> nn.Module:
    unknown = sorted(set(config) - set(_AUTHORS_KEYS) - {"use_checkpoint"})
    if unknown:
        raise ValueError(f"unsupported ResFormer options: {unknown}")
    return ResFormer(**{k: v for k, v in config.items() if k in _AUTHORS_KEYS})


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ResFormer:
    out_indices = kwargs.pop("out_indices", 3)
    return build_model_with_cfg(
        ResFormer, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs)


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    # the authors' evaluation: resize to int(256/224 * size), bicubic, centre crop, ImageNet mean/std
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.875,
        "interpolation": "bicubic", "fixed_input_size": False, "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "patch_embed.proj", "classifier": "head",
        "paper_ids": "arXiv:2212.00776", "origin_url": "https://github.com/ruitian12/resformer", **kwargs,
    }


# The authors' MR weights are on Google Drive (no direct URL): load them with checkpoint_path=.
default_cfgs = generate_default_cfgs({
    "resformer_tiny_patch16.mr_in1k": _cfg(),
    "resformer_small_patch16.mr_in1k": _cfg(),
    "resformer_small_patch16.mr384_in1k": _cfg(test_input_size=(3, 384, 384)),
    "resformer_base_patch16.mr_in1k": _cfg(),
})


@register_model
def resformer_tiny_patch16(pretrained: bool = False, **kwargs: Any) -> ResFormer:
    """ResFormer-T (5.69 M params): embed 192, depth 12, 3 heads."""
    return _create("resformer_tiny_patch16", pretrained,
                   **dict(dict(patch_size=16, embed_dim=192, depth=12, num_heads=3), **kwargs))


@register_model
def resformer_small_patch16(pretrained: bool = False, **kwargs: Any) -> ResFormer:
    """ResFormer-S (21.99 M params): embed 384, depth 12, 6 heads."""
    return _create("resformer_small_patch16", pretrained,
                   **dict(dict(patch_size=16, embed_dim=384, depth=12, num_heads=6), **kwargs))


@register_model
def resformer_base_patch16(pretrained: bool = False, **kwargs: Any) -> ResFormer:
    """ResFormer-B (86.43 M params): embed 768, depth 12, 12 heads."""
    return _create("resformer_base_patch16", pretrained,
                   **dict(dict(patch_size=16, embed_dim=768, depth=12, num_heads=12), **kwargs))
