"""SLAB-CSWin: CSWin Transformer with simplified linear attention and PRepBN (Guo et al., "SLAB:
Efficient Transformers with Simplified Linear Attention and Progressive Re-parameterized Batch
Normalization", ICML 2024, arXiv 2405.11582).

Authors' code: https://github.com/xinghaochen/SLAB (``classification/models/slab_cswin.py``, models
``SLAB_CSWin_64_24181_tiny_224`` / ``SLAB_CSWin_64_24322_small_224``, configs
``cfgs/slab_cswin_{t,s}.yaml`` with ``MODEL.LA.CSWIN_LA_SPLIT_SIZE = '56-28-14-7'``); this module
follows it at commit f58db00 and loads its checkpoints through :func:`checkpoint_filter_fn` (module
names are the authors').

Each stage's blocks are ``L`` (simplified linear attention with LePE) or ``S`` (CSWin's cross-shaped
window softmax attention with LePE), from ``attn_type`` (``M<n>`` after the four letters: first n
blocks L). L blocks use the stripe width ``la_split_size`` ("a-b-c-d"), S blocks ``split_size``.
A block whose stripe width equals the stage resolution, and every block of the last stage, has one
branch attending over the whole stage; the others split the channels (and heads) into a vertical-
and a horizontal-stripe branch. In L blocks: ReLU kernel, positional encoding of k per stripe token,
a depthwise conv of v inside each stripe, LePE (a 3x3 depthwise conv of v inside each stripe); the
core runs in the input dtype (the authors' float32 cast is commented out here). An unused parameter
``scale`` (1, 1, dim) of each L branch is kept: it is in the checkpoints and the parameter count.
Norms are PRepBN (LayerNorm eps 1e-5, step 120000).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.models._slab_layers import (
    SlabHead, SlabModelMixin, finalize_cfg, fold_into_conv_output, fold_into_linear, heads_merge, linear_attention,
    norm_affine, prepbn,
)
from archzoo.reference import register_reference

__all__ = ["SlabCSWinTransformer", "checkpoint_filter_fn", "cswin_block_attn_types"]


def cswin_block_attn_types(attn_type: str, depths: Sequence[int]) -> list[list[str]]:
    """Per stage, per block 'L' or 'S' (``M`` stages: the first ``int(attn_type[4:])`` blocks are L)."""
    out = []
    for i, d in enumerate(depths):
        t = attn_type[i]
        if t == "M":
            out.append(["L" if j < int(attn_type[4:]) else "S" for j in range(d)])
        elif t in ("L", "S"):
            out.append([t] * d)
        else:
            raise ValueError(f"attention type {t!r} in {attn_type!r} is not L, S or M")
    return out


def _to_stripes(x: torch.Tensor, H: int, W: int, hs: int, ws: int) -> torch.Tensor:
    """(B, H*W, C) tokens -> (B * nStripes, hs*ws, C), stripes in row-major order."""
    B, _, C = x.shape
    x = x.view(B, H // hs, hs, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, hs * ws, C)


def _from_stripes(x: torch.Tensor, H: int, W: int, hs: int, ws: int) -> torch.Tensor:
    """Inverse of :func:`_to_stripes`: (B * nStripes, hs*ws, C) -> (B, H*W, C)."""
    C = x.shape[-1]
    x = x.view(-1, H // hs, W // ws, hs, ws, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H * W, C)


class _StripeAttentionBase(nn.Module):
    """Stripe geometry and LePE shared by both attention kinds; ``idx`` -1 whole stage, 0 vertical
    stripes (full height, ``split_size`` wide), 1 horizontal stripes."""

    def __init__(self, dim: int, resolution: int, idx: int, split_size: int, num_heads: int) -> None:
        super().__init__()
        self.dim, self.resolution, self.num_heads = dim, resolution, num_heads
        if idx == -1:
            self.H_sp, self.W_sp = resolution, resolution
        elif idx == 0:
            self.H_sp, self.W_sp = resolution, split_size
        elif idx == 1:
            self.H_sp, self.W_sp = split_size, resolution
        else:
            raise ValueError(f"stripe index must be -1, 0 or 1, got {idx}")
        if resolution % split_size:
            raise ValueError(f"stripe width {split_size} does not divide the stage resolution {resolution}")
        self.get_v = nn.Conv2d(dim, dim, kernel_size=3, stride=1, padding=1, groups=dim)

    def _stripes_and_lepe(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        H = W = self.resolution
        hs, ws = self.H_sp, self.W_sp
        q, k, v = (_to_stripes(t, H, W, hs, ws) for t in (q, k, v))
        # LePE: a 3x3 depthwise conv of v inside each stripe (zero padding at the stripe border)
        Bp, N, C = v.shape
        lepe = self.get_v(v.transpose(1, 2).reshape(Bp, C, hs, ws)).flatten(2).transpose(1, 2)
        return q, k, v, lepe


class LePEAttention(_StripeAttentionBase):
    """CSWin's softmax attention inside stripes plus LePE (the S blocks)."""

    def __init__(self, dim: int, resolution: int, idx: int, split_size: int = 7, num_heads: int = 8,
                 attn_drop: float = 0.0, qk_scale: float | None = None) -> None:
        super().__init__(dim, resolution, idx, split_size, num_heads)
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.attn_drop = nn.Dropout(attn_drop)
        self.fused_attn = use_fused_attn()

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        q, k, v, lepe = self._stripes_and_lepe(qkv[0], qkv[1], qkv[2])
        Bp, N, C = q.shape
        h = self.num_heads
        q, k, v, lepe = (t.reshape(Bp, N, h, C // h).transpose(1, 2) for t in (q, k, v, lepe))
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0,
                                               scale=self.scale)
        else:
            x = self.attn_drop(((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)) @ v
        x = (x + lepe).transpose(1, 2).reshape(Bp, N, C)
        return _from_stripes(x, self.resolution, self.resolution, self.H_sp, self.W_sp)


class CSWinLinearAttention(_StripeAttentionBase):
    """Simplified linear attention inside stripes, plus a depthwise conv of v and LePE (the L blocks)."""

    def __init__(self, dim: int, resolution: int, idx: int, split_size: int = 7, num_heads: int = 8,
                 kernel_size: int = 5) -> None:
        super().__init__(dim, resolution, idx, split_size, num_heads)
        head_dim = dim // num_heads
        self.dwc = nn.Conv2d(head_dim, head_dim, kernel_size, padding=kernel_size // 2, groups=head_dim)
        self.scale = nn.Parameter(torch.zeros(1, 1, dim))  # unused by the authors' forward
        self.positional_encoding = nn.Parameter(torch.zeros(1, self.H_sp * self.W_sp, dim))

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        q, k, v, lepe = self._stripes_and_lepe(qkv[0], qkv[1], qkv[2])
        h = self.num_heads
        x, v = linear_attention(q, k + self.positional_encoding, v, h, upcast=False)
        fmap = v.reshape(-1, self.H_sp, self.W_sp, v.shape[-1]).permute(0, 3, 1, 2)
        x = x + self.dwc(fmap).flatten(2).transpose(1, 2)
        x = heads_merge(x, h) + lepe  # LePE's channels are head-major too
        return _from_stripes(x, self.resolution, self.resolution, self.H_sp, self.W_sp)


class CSWinBlock(nn.Module):
    def __init__(self, dim: int, reso: int, num_heads: int, split_size: int = 7, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, norm_layer=None, last_stage: bool = False, kernel_size: int = 5,
                 attn_type: str = "L") -> None:
        super().__init__()
        self.patches_resolution = reso
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.norm1 = norm_layer(dim)
        last_stage = last_stage or reso == split_size
        self.branch_num = 1 if last_stage else 2
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(drop)
        bdim, bheads = (dim, num_heads) if last_stage else (dim // 2, num_heads // 2)
        idxs = [-1] if last_stage else [0, 1]
        if attn_type == "L":
            self.attns = nn.ModuleList([CSWinLinearAttention(bdim, reso, i, split_size, bheads, kernel_size) for i in idxs])
        elif attn_type == "S":
            self.attns = nn.ModuleList([LePEAttention(bdim, reso, i, split_size, bheads, attn_drop, qk_scale) for i in idxs])
        else:
            raise ValueError(f"attn_type must be 'L' or 'S', got {attn_type!r}")
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.mlp = Mlp(dim, int(dim * mlp_ratio), dim, act_layer=nn.GELU, drop=drop)
        self.norm2 = norm_layer(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(B, L, 3, C).permute(2, 0, 1, 3)
        if self.branch_num == 2:
            y = torch.cat([self.attns[0](qkv[..., : C // 2]), self.attns[1](qkv[..., C // 2:])], dim=2)
        else:
            y = self.attns[0](qkv)
        x = x + self.drop_path(self.proj_drop(self.proj(y)))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold norm1 into qkv and norm2 into mlp.fc1 (eval statistics)."""
        ab = norm_affine(self.norm1)
        if ab is not None:
            self.qkv = fold_into_linear(self.qkv, *ab)
            self.norm1 = nn.Identity()
        ab = norm_affine(self.norm2)
        if ab is not None:
            self.mlp.fc1 = fold_into_linear(self.mlp.fc1, *ab)
            self.norm2 = nn.Identity()


class _MapToTokens(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)


class ConvTokenEmbed(nn.Sequential):
    """The authors' ``stage1_conv_embed``: Conv2d(7, stride 4, pad 2), to tokens, PRepBN (keys 0, 2)."""

    def __init__(self, in_chans: int, embed_dim: int, norm_layer) -> None:
        super().__init__(nn.Conv2d(in_chans, embed_dim, 7, 4, 2), _MapToTokens(), norm_layer(embed_dim))

    @torch.no_grad()
    def reparameterize(self) -> None:
        ab = norm_affine(self[2])
        if ab is not None:
            self[0] = fold_into_conv_output(self[0], *ab)
            self[2] = nn.Identity()


class MergeBlock(nn.Module):
    """Conv2d(3, stride 2, pad 1) between stages, then PRepBN over the tokens."""

    def __init__(self, dim: int, dim_out: int, norm_layer) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, 2, 1)
        self.norm = norm_layer(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, C = x.shape
        H = W = int(round(L ** 0.5))
        x = self.conv(x.transpose(1, 2).reshape(B, C, H, W))
        return self.norm(x.flatten(2).transpose(1, 2))

    @torch.no_grad()
    def reparameterize(self) -> None:
        ab = norm_affine(self.norm)
        if ab is not None:
            self.conv = fold_into_conv_output(self.conv, *ab)
            self.norm = nn.Identity()


class SlabCSWinTransformer(SlabModelMixin, nn.Module):
    """SLAB-CSWin with timm's interface (authors' ``CSWinTransformer``; four stages, square input).

    Defaults are the authors' class defaults; their released models set ``embed_dim=64`` and
    ``la_split_size='56-28-14-7'``. ``prepbn_step`` / ``prepbn_warm``: the PRepBN schedule (120000, 0).
    ``patch_size`` and ``focusing_factor`` are accepted for the authors' configs and unused, as there.
    """

    def __init__(
            self,
            img_size: int = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dim: int = 96,
            depth: Sequence[int] = (2, 2, 6, 2),
            split_size: Sequence[int] = (1, 2, 7, 7),
            la_split_size: str = "1-2-7-7",
            num_heads: Sequence[int] = (2, 4, 8, 16),
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            qk_scale: float | None = None,
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
            kernel_size: int = 5,
            attn_type: str = "LLLL",
            prepbn_step: int = 120000,
            prepbn_warm: int = 0,
            focusing_factor: int = 3,
    ) -> None:
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        if len(depth) != 4 or len(num_heads) != 4 or len(split_size) != 4:
            raise ValueError("SLAB-CSWin has four stages: depth, num_heads and split_size need four values")
        la_split = [int(s) for s in la_split_size.split("-")] if isinstance(la_split_size, str) else list(la_split_size)
        if not isinstance(img_size, int):
            if img_size[0] != img_size[1]:
                raise ValueError("SLAB-CSWin takes square inputs only")
            img_size = img_size[0]
        norm_layer = prepbn(prepbn_step, ln_eps=1e-5, warm=prepbn_warm)
        self.img_size = (img_size, img_size)
        self.num_classes, self.global_pool, self.in_chans = num_classes, global_pool, in_chans
        dpr = torch.linspace(0, drop_path_rate, sum(depth), device="cpu").tolist()
        types = cswin_block_attn_types(attn_type, depth)
        self.stage1_conv_embed = ConvTokenEmbed(in_chans, embed_dim, norm_layer)
        dim, cur, self.feature_info = embed_dim, 0, []
        for i in range(4):
            if i > 0:
                setattr(self, f"merge{i}", MergeBlock(dim, dim * 2, norm_layer))
                dim *= 2
            reso = img_size // 2 ** (i + 2)
            splits = [la_split[i] if t == "L" else split_size[i] for t in types[i]]
            setattr(self, f"stage{i + 1}", nn.ModuleList([
                CSWinBlock(dim, reso, num_heads[i], splits[j], mlp_ratio, qkv_bias, qk_scale, drop_rate,
                           attn_drop_rate, dpr[cur + j], norm_layer, i == 3, kernel_size, types[i][j])
                for j in range(depth[i])
            ]))
            cur += depth[i]
            self.feature_info.append(dict(num_chs=dim, reduction=2 ** (i + 2), module=f"stage{i + 1}"))
        self.num_features = self.head_hidden_size = dim
        self.head = SlabHead(norm_layer(dim), dim, num_classes)
        self.grad_checkpointing = False
        self.init_weights()

    def init_weights(self) -> None:
        """The authors' initialisation: trunc-normal(0.02) Linear weights, zero biases, LayerNorm 1/0."""
        if next(self.parameters()).is_meta:
            return
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
        return set()  # the authors' list names pos_embed/cls_token, which SLAB-CSWin does not have

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^stage1_conv_embed", blocks=[(r"^(?:merge|stage)(\d+)", None), (r"^head\.norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Note: recomputation runs each block's PRepBNs again, advancing their schedule twice per step."""
        self.grad_checkpointing = enable

    def _run_stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        if i > 0:
            x = getattr(self, f"merge{i}")(x)
        for blk in getattr(self, f"stage{i + 1}"):
            x = checkpoint(blk, x) if self.grad_checkpointing and not torch.jit.is_scripting() else blk(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens of the last stage, (B, H*W, C), before the final norm (it sits in the head)."""
        x = self.stage1_conv_embed(x)
        for i in range(4):
            x = self._run_stage(i, x)
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
        """Stage outputs as NCHW maps; ``norm`` applies the final norm to the last one."""
        if output_fmt != "NCHW":
            raise ValueError("SLAB-CSWin intermediates are NCHW maps")
        take, max_index = feature_take_indices(4, indices)
        stages = max_index + 1 if stop_early or intermediates_only else 4
        x = self.stage1_conv_embed(x)
        out = []
        for i in range(stages):
            x = self._run_stage(i, x)
            if i in take:
                t = self.head.norm(x) if norm and i == 3 else x
                side = self.img_size[0] // 2 ** (i + 2)
                out.append(t.transpose(1, 2).reshape(t.shape[0], -1, side, side))
        if intermediates_only:
            return out
        return x, out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(4, indices)
        for i in range(max_index + 1, 4):
            setattr(self, f"stage{i + 1}", nn.ModuleList())
            setattr(self, f"merge{i}", nn.Identity())
        if prune_norm or max_index < 3:
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


@register_reference("slab_cswin")
def _reference_slab_cswin(config: dict, meta: dict) -> nn.Module:
    return SlabCSWinTransformer(**config)


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> SlabCSWinTransformer:
    out_indices = kwargs.pop("out_indices", (0, 1, 2, 3))
    return finalize_cfg(build_model_with_cfg(
        SlabCSWinTransformer, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs))


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    # the authors' CSWin cfg: crop 0.9, bicubic
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.9,
        "interpolation": "bicubic", "fixed_input_size": True, "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "stage1_conv_embed.0", "classifier": "head.fc",
        "paper_ids": "arXiv:2405.11582", "origin_url": "https://github.com/xinghaochen/SLAB", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "slab_cswin_t.in1k": _cfg("https://github.com/xinghaochen/SLAB/releases/download/ckpts/slab_cswin_tiny.pth"),
    "slab_cswin_s.in1k": _cfg(),
})

# SLAB_CSWin_64_24181_tiny_224 / _24322_small_224 + cfgs/slab_cswin_{t,s}.yaml (LLSS, drop-path 0.1 / 0.3)
_CSWIN = dict(embed_dim=64, split_size=(1, 2, 7, 7), la_split_size="56-28-14-7", num_heads=(2, 4, 8, 16),
              mlp_ratio=4.0, attn_type="LLSS")


@register_model
def slab_cswin_t(pretrained: bool = False, **kwargs: Any) -> SlabCSWinTransformer:
    """SLAB-CSWin-T (21.2 M params, 4.3 GMACs at 224); authors' ``SLAB_CSWin_64_24181_tiny_224``."""
    return _create("slab_cswin_t", pretrained, **dict(dict(_CSWIN, depth=(2, 4, 18, 1), drop_path_rate=0.1), **kwargs))


@register_model
def slab_cswin_s(pretrained: bool = False, **kwargs: Any) -> SlabCSWinTransformer:
    """SLAB-CSWin-S (35.5 M params, 6.8 GMACs at 224); authors' ``SLAB_CSWin_64_24322_small_224``."""
    return _create("slab_cswin_s", pretrained, **dict(dict(_CSWIN, depth=(2, 4, 32, 2), drop_path_rate=0.3), **kwargs))
