"""SLAB-DeiT: DeiT with simplified linear attention and PRepBN (Guo et al., "SLAB: Efficient
Transformers with Simplified Linear Attention and Progressive Re-parameterized Batch Normalization",
ICML 2024, arXiv 2405.11582).

Authors' code: https://github.com/xinghaochen/SLAB (``classification/models/slab_deit.py``, models
``deit_{tiny,small}_patch16_224_linear_repbn``); this module follows it at commit f58db00 and loads
its checkpoints through :func:`checkpoint_filter_fn` (module names are the authors').

Details kept from the authors' code:
- every attention is the simplified linear attention over all tokens, with a learnable positional
  encoding of k sized for a 14x14 token grid (hard-coded there; here ``sla_grid``, default 14) and a
  5x5 depthwise conv of v shared by the heads; its core runs in (at least) float32;
- the class token parameter exists (it is in the checkpoints and the parameter count) but is never
  used: the tokens are averaged after the final norm; ``pos_embed`` has no class-token slot;
- the patch embedding has no norm; the norms are PRepBN with LayerNorm eps 1e-6 and step 60000.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, to_2tuple, trunc_normal_
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.models._slab_layers import (
    SlabHead, SlabModelMixin, finalize_cfg, fold_into_linear, heads_merge, linear_attention, norm_affine, prepbn,
)
from archzoo.reference import register_reference

__all__ = ["SlabVisionTransformer", "checkpoint_filter_fn"]


class DeitLinearAttention(nn.Module):
    """Simplified linear attention over a square token grid (positional encoding sized for it)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_drop: float = 0.0,
                 grid: int = 14, kernel_size: int = 5) -> None:
        super().__init__()
        self.num_heads, self.grid = num_heads, grid
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dwc = nn.Conv2d(head_dim, head_dim, kernel_size, padding=kernel_size // 2, groups=head_dim)
        self.positional_encoding = nn.Parameter(torch.zeros(1, grid * grid, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, C).unbind(2)
        x, v = linear_attention(q, k + self.positional_encoding, v, self.num_heads, upcast=True)
        fmap = v.reshape(-1, self.grid, self.grid, v.shape[-1]).permute(0, 3, 1, 2)
        x = x + self.dwc(fmap).flatten(2).transpose(1, 2)
        return self.proj_drop(self.proj(heads_merge(x, self.num_heads)))


class Block(nn.Module):
    """Pre-norm transformer block with PRepBN norms and simplified linear attention."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0,
                 drop_path: float = 0.0, norm_layer=None, grid: int = 14) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = DeitLinearAttention(dim, num_heads, qkv_bias, drop, grid)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold norm1 into attn.qkv and norm2 into mlp.fc1 (eval statistics)."""
        ab = norm_affine(self.norm1)
        if ab is not None:
            self.attn.qkv = fold_into_linear(self.attn.qkv, *ab)
            self.norm1 = nn.Identity()
        ab = norm_affine(self.norm2)
        if ab is not None:
            self.mlp.fc1 = fold_into_linear(self.mlp.fc1, *ab)
            self.norm2 = nn.Identity()


class PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class SlabVisionTransformer(SlabModelMixin, nn.Module):
    """SLAB-DeiT with timm's interface (authors' ``VisionTransformer`` with ``LinearNorm``).

    The token grid ``img_size / patch_size`` must equal ``sla_grid`` (14 in the authors' code).
    ``prepbn_step`` / ``prepbn_warm``: the PRepBN schedule in training forward calls (60000, 0).
    """

    def __init__(
            self,
            img_size: int = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dim: int = 768,
            depth: int = 12,
            num_heads: int = 12,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            sla_grid: int = 14,
            prepbn_step: int = 60000,
            prepbn_warm: int = 0,
    ) -> None:
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        self.img_size = to_2tuple(img_size)
        grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        if grid != (sla_grid, sla_grid):
            raise ValueError(f"the linear attention needs a {sla_grid}x{sla_grid} token grid (the authors hard-code 14x14), "
                             f"but img_size {img_size} / patch {patch_size} gives {grid[0]}x{grid[1]}")
        norm_layer = prepbn(prepbn_step, ln_eps=1e-6, warm=prepbn_warm)
        self.num_classes, self.global_pool, self.in_chans = num_classes, global_pool, in_chans
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.num_prefix_tokens = 0
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))  # unused, kept for the checkpoints / count
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth, device="cpu").tolist()
        self.blocks = nn.Sequential(*[
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, dpr[i], norm_layer, sla_grid)
            for i in range(depth)
        ])
        self.feature_info = [dict(num_chs=embed_dim, reduction=patch_size, module=f"blocks.{i}") for i in range(depth)]
        self.head = SlabHead(norm_layer(embed_dim), embed_dim, num_classes)
        self.grad_checkpointing = False
        self.init_weights()

    def init_weights(self) -> None:
        """The authors' (DeiT) initialisation: trunc-normal(0.02) pos_embed, cls_token and Linear
        weights, zero biases, LayerNorm 1/0; SLA positional encodings stay zero."""
        if next(self.parameters()).is_meta:
            return
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
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
        return {"pos_embed", "cls_token"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^cls_token|pos_embed|patch_embed", blocks=[(r"^blocks\.(\d+)", None), (r"^head\.norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Note: recomputation runs each block's PRepBNs again, advancing their schedule twice per step."""
        self.grad_checkpointing = enable

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pos_drop(self.patch_embed(x) + self.pos_embed)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens after the last block, (B, N, C), before the final norm (it sits in the head)."""
        x = self._embed(x)
        for blk in self.blocks:
            x = checkpoint(blk, x) if self.grad_checkpointing and not torch.jit.is_scripting() else blk(x)
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
        """Block outputs as NCHW maps (``NLC``: tokens); ``norm`` applies the final norm to every one."""
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError("output_fmt must be 'NCHW' or 'NLC'")
        take, max_index = feature_take_indices(len(self.blocks), indices)
        blocks = self.blocks[: max_index + 1] if stop_early or intermediates_only else self.blocks
        x = self._embed(x)
        H, W = self.img_size[0] // self.patch_embed.proj.stride[0], self.img_size[1] // self.patch_embed.proj.stride[1]
        out = []
        for i, blk in enumerate(blocks):
            x = blk(x)
            if i in take:
                t = self.head.norm(x) if norm else x
                out.append(t.transpose(1, 2).reshape(t.shape[0], -1, H, W) if output_fmt == "NCHW" else t)
        if intermediates_only:
            return out
        return x, out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max_index + 1]
        if prune_norm:
            self.head.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Authors' keys -> archzoo's: the final ``norm``/``head`` move into ``head.norm``/``head.fc``."""
    out = {}
    for k, v in unwrap_state_dict(state_dict, wrapper_keys=("model",)).items():
        if k.startswith("norm."):
            k = "head.norm." + k[len("norm."):]
        elif k in ("head.weight", "head.bias"):
            k = "head.fc." + k.split(".")[-1]
        out[k] = v
    return out


@register_reference("slab_deit")
def _reference_slab_deit(config: dict, meta: dict) -> nn.Module:
    return SlabVisionTransformer(**config)


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> SlabVisionTransformer:
    out_indices = kwargs.pop("out_indices", 3)
    return finalize_cfg(build_model_with_cfg(
        SlabVisionTransformer, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs))


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.875,
        "interpolation": "bicubic", "fixed_input_size": True, "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "patch_embed.proj", "classifier": "head.fc",
        "paper_ids": "arXiv:2405.11582", "origin_url": "https://github.com/xinghaochen/SLAB", **kwargs,
    }


_REL = "https://github.com/xinghaochen/SLAB/releases/download/ckpts/"
default_cfgs = generate_default_cfgs({
    "slab_deit_t.in1k": _cfg(_REL + "slab_deit_tiny.pth"),
    "slab_deit_s.in1k": _cfg(_REL + "slab_deit_small.pth"),
})


@register_model
def slab_deit_t(pretrained: bool = False, **kwargs: Any) -> SlabVisionTransformer:
    """SLAB-DeiT-T (6.2 M params, 1.1 GMACs at 224); authors' ``deit_tiny_patch16_224_linear_repbn``."""
    return _create("slab_deit_t", pretrained, **dict(dict(patch_size=16, embed_dim=192, depth=12, num_heads=3), **kwargs))


@register_model
def slab_deit_s(pretrained: bool = False, **kwargs: Any) -> SlabVisionTransformer:
    """SLAB-DeiT-S (23.0 M params, 4.4 GMACs at 224); authors' ``deit_small_patch16_224_linear_repbn``."""
    return _create("slab_deit_s", pretrained, **dict(dict(patch_size=16, embed_dim=384, depth=12, num_heads=6), **kwargs))
