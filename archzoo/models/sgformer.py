"""SG-Former: Self-guided Transformer with Evolving Token Reallocation (Ren et al., ICCV 2023,
arXiv:2308.12216).

Authors' code: https://github.com/OliverRensu/SG-Former (``sgformer.py``, ``pos_embed.py``).

SG-Former spends attention tokens where the image is salient. Blocks of the first three stages come
in pairs:

* a *hybrid-scale* block: half of the heads attend globally to keys/values spatially reduced by a
  ``sr x sr`` strided convolution, the other half attend inside 7x7 windows. Both halves also give a
  *significance map*: the attention each token receives, averaged over heads and queries (the global
  map is nearest-upsampled to full resolution and added to the local one);
* a *token-reallocation* block that consumes the map: tokens are sorted by significance (once in
  row-major, once in column-major order), the sorted sequence is cut into a least-significant quarter,
  a middle half and a most-significant quarter, and every run of ``g`` consecutive sorted tokens is
  merged into one by a learned ``Linear(g, 1)`` whose ``g`` shrinks with significance (196 / 56 / 28
  at spatial reduction 8, 49 / 14 / 7 at 4; halves merged by 2 / 1 at 2). The merged row-order
  sequence gives keys/values to the first half of the heads, the column-order one to the second half;
  queries stay at full resolution.

The last stage uses plain multi-head attention. Every attention adds LePE (a 3x3 depthwise conv of a
linear map of its input) to its output before the projection; the MLP has a 3x3 depthwise conv with its
own residual inside the GELU (``act(fc1(x) + dw(fc1(x)))``). The stem is three 3x3 convs (strides 2,
1, 2) with GroupNorm(1, C) (``Conv2d_BN.bn`` in the authors' code), then a LayerNorm and a trainable
2-D sin-cos position embedding; stages are joined by 1x1 -> depthwise 3x3 stride 2 -> 1x1 convs, each
with GroupNorm(1, C). Every stage ends with a LayerNorm that feeds the next stage; the head averages
the last stage's tokens.

Input size: the authors' model takes only the size it was built for (224x224): the position embedding
has a fixed number of tokens and is added without interpolation, the merge layers have fixed group
sizes, and the local windows are 7x7. archzoo builds the model for any ``img_size`` at which the
authors' arithmetic works out (224 and its multiples for the released configurations), checks that
at construction, and raises :class:`archzoo.validation.InputError` for any other input size.
``checkpoint_filter_fn`` resamples a checkpoint's position embedding (bicubic, as the authors'
``interpolate_pos_embed``) when the model was built for another size.

The significance map travels from block to block *and across stages* (the authors' forward carries
it on). A hybrid-scale block whose map is not consumed hands it to the next block; if that is
another hybrid-scale block, the authors' code fails. With the usual reductions (8, 4, 2, 1) this means
the depths of stages 1 and 2 must be even; stage 3 may be odd (its last map is dropped by the plain
attention of stage 4). archzoo checks this rule at construction.

Token sorting makes the function discontinuous in the significance values: archzoo computes the maps
in the authors' order of operations, and the reference test runs in float64.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import (
    ConvNormAct, DropPath, GroupNorm1, calculate_drop_path_rates, resample_abs_pos_embed, to_2tuple,
    trunc_normal_, use_fused_attn,
)
from timm.models import register_model
from timm.models._builder import build_model_with_cfg
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference
from archzoo.validation import InputRules, check_input

__all__ = ["SGFormer", "checkpoint_filter_fn", "sincos_2d_embed"]

Significance = Tuple[torch.Tensor, torch.Tensor]  # (row-major, column-major) maps, each (B, H*W)

WINDOW = 7  # local attention window of the hybrid-scale blocks (hard-coded by the authors)

# Token reallocation per spatial reduction: (fraction of the sorted tokens, merge group size) for each
# part, least significant first. The authors hard-code these for reductions 8, 4 and 2.
REALLOCATION: Dict[int, Tuple[Tuple[Tuple[int, int], int], ...]] = {
    8: (((0, 1), 196), ((1, 3), 56), ((3, 4), 28)),  # quarters: [0, 1/4), [1/4, 3/4), [3/4, 1)
    4: (((0, 1), 49), ((1, 3), 14), ((3, 4), 7)),
    2: (((0, 2), 2), ((2, 4), 1)),  # halves
}


def sincos_2d_embed(dim: int, height: int, width: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """MAE-style 2-D sin-cos embedding, (height*width, dim) over row-major tokens: the first half of
    the channels encodes the column (x), the second half the row (y), each as [sin, cos] of
    ``pos / 10000^(k / (dim/4))``."""
    if dim % 4:
        raise ValueError(f"the 2-D sin-cos position embedding needs a width divisible by 4, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")

    def one_axis(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1) * omega[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([one_axis(xs), one_axis(ys)], dim=1).to(dtype)


def _conv_gn(in_chs: int, out_chs: int, kernel_size: int, stride: int = 1, groups: int = 1,
             act: bool = True) -> ConvNormAct:
    """Bias-free conv + GroupNorm(1, C) (+ GELU): the authors' ``Conv2d_BN`` and the GELU after it."""
    return ConvNormAct(in_chs, out_chs, kernel_size, stride=stride, groups=groups, bias=False,
                       norm_layer=GroupNorm1, act_layer=nn.GELU, apply_act=act)


class Stem(nn.Module):
    """Three 3x3 convs (strides 2, 1, 2) with GroupNorm(1, C) and GELU between them, then a LayerNorm
    over the stride-4 tokens (default eps 1e-5, as the authors' ``Head``)."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.conv1 = _conv_gn(in_chans, dim, 3, stride=2)
        self.conv2 = _conv_gn(dim, dim, 3)
        self.conv3 = _conv_gn(dim, dim, 3, stride=2, act=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
        x = self.conv3(self.conv2(self.conv1(x)))
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class PatchMerging(nn.Module):
    """1x1 conv -> GELU -> depthwise 3x3 stride 2 -> GELU -> 1x1 conv, each conv with GroupNorm(1, C)."""

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.conv1 = _conv_gn(dim, dim_out, 1)
        self.conv2 = _conv_gn(dim_out, dim_out, 3, stride=2, groups=dim_out)
        self.conv3 = _conv_gn(dim_out, dim_out, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.conv2(self.conv1(x)))


def _tokens_to_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, heads * d) -> (B, heads, N, d)."""
    b, n, _ = x.shape
    return x.reshape(b, n, num_heads, -1).transpose(1, 2)


def _kv_heads(x: torch.Tensor, num_heads: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 2 * heads * d) -> k, v each (B, heads, N, d): keys first, as the authors' ``kv``."""
    b, n, _ = x.shape
    kv = x.reshape(b, n, 2, num_heads, -1).permute(2, 0, 3, 1, 4)
    return kv[0], kv[1]


class _AttentionBase(nn.Module):
    """Shared parts: LePE (depthwise 3x3 of a linear map of the input, added to the attention output)
    and the output projection."""

    def __init__(self, dim: int, num_heads: int, attn_drop: float, proj_drop: float,
                 qk_scale: Optional[float] = None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = qk_scale or self.head_dim ** -0.5
        self.fused_attn = use_fused_attn()
        self.lepe_linear = nn.Linear(dim, dim)
        self.lepe_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def lepe(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        return self.lepe_conv(_tokens_to_map(self.lepe_linear(x), h, w)).flatten(2).transpose(1, 2)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T * scale) v; no map is needed here, so the fused kernel may be used."""
        if self.fused_attn:
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0, scale=self.scale)
        attn = self.attn_drop(((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1))
        return attn @ v

    def output(self, x: torch.Tensor, lepe: torch.Tensor) -> torch.Tensor:
        return self.proj_drop(self.proj(x + lepe))


class HybridScaleAttention(_AttentionBase):
    """Half of the heads global over ``sr``-reduced keys/values, half in 7x7 windows; also returns the
    significance map (attention received per token) in row- and column-major order."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, qk_scale: Optional[float] = None) -> None:
        super().__init__(dim, num_heads, attn_drop, proj_drop, qk_scale)
        if num_heads % 2:
            raise ValueError(f"hybrid-scale attention splits the heads in two halves: {num_heads} heads is odd")
        self.sr_ratio = sr_ratio
        half = dim // 2
        self.sr = nn.Conv2d(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
        self.sr_norm = nn.LayerNorm(dim)  # default eps 1e-5, as the authors'
        self.sr_act = nn.GELU()
        self.q_global = nn.Linear(dim, half, bias=qkv_bias)
        self.kv_global = nn.Linear(dim, dim, bias=qkv_bias)
        self.q_local = nn.Linear(dim, half, bias=qkv_bias)
        self.kv_local = nn.Linear(dim, dim, bias=qkv_bias)

    def _windows(self, t: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, heads, H*W, d) -> (B*heads*nWin, 49, d), windows in row-major order."""
        b, n, _, d = t.shape
        t = t.reshape(b * n, h // WINDOW, WINDOW, w // WINDOW, WINDOW, d).permute(0, 1, 3, 2, 4, 5)
        return t.reshape(-1, WINDOW * WINDOW, d)

    def forward(self, x: torch.Tensor, h: int, w: int) -> Tuple[torch.Tensor, Significance]:
        b, n, c = x.shape
        heads = self.num_heads // 2
        lepe = self.lepe(x, h, w)

        # global half: keys/values from the sr x sr strided conv of the map
        q1 = _heads(self.q_global(x), heads)
        reduced = self.sr(_tokens_to_map(x, h, w))
        hr, wr = reduced.shape[-2:]
        reduced = self.sr_act(self.sr_norm(reduced.flatten(2).transpose(1, 2)))
        k1, v1 = _kv_heads(self.kv_global(reduced), heads)
        # the maps are taken after attention dropout, as the authors', and carry no gradient
        attn1 = self.attn_drop(((q1 @ k1.transpose(-2, -1)) * self.scale).softmax(dim=-1))  # (B, heads, N, Nr)
        x1 = (attn1 @ v1).transpose(1, 2).reshape(b, n, c // 2)
        global_map = attn1.detach().mean(1).mean(dim=1)  # heads, then queries -> (B, Nr)
        global_map = F.interpolate(global_map.reshape(b, 1, hr, wr), size=(h, w), mode="nearest")[:, 0]

        # local half: 7x7 windows at full resolution
        q2 = self._windows(_heads(self.q_local(x), heads), h, w)
        k2, v2 = _kv_heads(self.kv_local(x), heads)
        k2, v2 = self._windows(k2, h, w), self._windows(v2, h, w)
        attn2 = self.attn_drop(((q2 @ k2.transpose(-2, -1)) * self.scale).softmax(dim=-1))  # (B*heads*nWin, 49, 49)
        nh, nw = h // WINDOW, w // WINDOW
        local_map = attn2.detach().reshape(b, heads, nh * nw, WINDOW * WINDOW, WINDOW * WINDOW).mean(1).mean(dim=2)
        local_map = local_map.reshape(b, nh, nw, WINDOW, WINDOW).permute(0, 1, 3, 2, 4).reshape(b, h, w)
        x2 = attn2 @ v2
        x2 = x2.reshape(b, heads, nh, nw, WINDOW, WINDOW, -1).permute(0, 2, 4, 3, 5, 1, 6).reshape(b, n, -1)

        out = self.output(torch.cat([x1, x2], dim=-1), lepe)
        significance = local_map + global_map
        return out, (significance.reshape(b, h * w), significance.transpose(1, 2).reshape(b, h * w))


class ReallocationAttention(_AttentionBase):
    """Full-resolution queries over tokens merged by significance: row-order merge for the first half
    of the heads, column-order merge for the second half."""

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, qkv_bias: bool = True,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, qk_scale: Optional[float] = None) -> None:
        super().__init__(dim, num_heads, attn_drop, proj_drop, qk_scale)
        if num_heads % 2:
            raise ValueError(f"token reallocation splits the heads in two halves: {num_heads} heads is odd")
        if sr_ratio not in REALLOCATION:
            raise ValueError(f"token reallocation is defined for spatial reductions {sorted(REALLOCATION)}, "
                             f"got {sr_ratio}")
        self.sr_ratio = sr_ratio
        self.parts = REALLOCATION[sr_ratio]
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv_row = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv_col = nn.Linear(dim, dim, bias=qkv_bias)
        self.merge = nn.ModuleList([nn.Linear(g, 1) for _, g in self.parts])

    @staticmethod
    def bounds(n: int, parts: Sequence[Tuple[Tuple[int, int], int]]) -> List[Tuple[int, int, int]]:
        """(start, stop, merged tokens) of each part of a sorted sequence of n tokens, with the
        authors' integer arithmetic: part edges ``n // 4 * k`` (quarters) or ``n // 2`` (halves), and
        ``n // g // (4 / quarters)`` merged tokens for group size g. A part that is not exactly that
        many groups of g is an error (the authors' reshape or merge Linear fails there)."""
        quarter = n // 4
        edge = {0: 0, 1: quarter, 2: n // 2, 3: quarter * 3, 4: n}
        out = []
        for (lo, hi), g in parts:
            start, stop = edge[lo], edge[hi]
            merged = n // g // (4 // (hi - lo))
            if stop - start != merged * g:
                raise ValueError(f"a part of {stop - start} sorted tokens is not {merged} groups of {g}")
            out.append((start, stop, merged))
        return out

    def _merge(self, tokens: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """Sort tokens (B, N, C) by ``order`` and merge each part's groups: (B, M, C)."""
        b, n, c = tokens.shape
        tokens = torch.gather(tokens, 1, order.unsqueeze(-1).expand(-1, -1, c)).transpose(1, 2)  # (B, C, N)
        merged = [
            lin(tokens[:, :, start:stop].reshape(b, c, m, -1)).squeeze(-1)
            for (start, stop, m), lin in zip(self.bounds(n, self.parts), self.merge)
        ]
        return torch.cat(merged, dim=-1).transpose(1, 2)

    def forward(self, x: torch.Tensor, h: int, w: int, significance: Significance) -> torch.Tensor:
        b, n, c = x.shape
        lepe = self.lepe(x, h, w)
        q = _heads(self.q(x), self.num_heads)
        row_order = torch.sort(significance[0], dim=1)[1]  # ascending: least significant first
        col_order = torch.sort(significance[1], dim=1)[1]
        seq_row = self._merge(x, row_order)
        seq_col = self._merge(x.reshape(b, h, w, c).transpose(1, 2).reshape(b, n, c), col_order)
        k1, v1 = _kv_heads(self.kv_row(seq_row), self.num_heads // 2)
        k2, v2 = _kv_heads(self.kv_col(seq_col), self.num_heads // 2)
        out = self.attend(q, torch.cat([k1, k2], dim=1), torch.cat([v1, v2], dim=1))
        return self.output(out.transpose(1, 2).reshape(b, n, c), lepe)


class PlainAttention(_AttentionBase):
    """Multi-head self-attention over all tokens (the last stage, spatial reduction 1)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, qk_scale: Optional[float] = None) -> None:
        super().__init__(dim, num_heads, attn_drop, proj_drop, qk_scale)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = x.shape
        lepe = self.lepe(x, h, w)
        k, v = _kv_heads(self.kv(x), self.num_heads)
        out = self.attend(_heads(self.q(x), self.num_heads), k, v)
        return self.output(out.transpose(1, 2).reshape(b, n, c), lepe)


class ConvMlp(nn.Module):
    """fc1 -> GELU(x + dwconv3x3(x)) -> fc2 on tokens."""

    def __init__(self, dim: int, hidden: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = self.fc1(x)
        x = self.act(x + self.dwconv(_tokens_to_map(x, h, w)).flatten(2).transpose(1, 2))
        return self.drop(self.fc2(self.drop(x)))


BLOCK_KINDS = ("hybrid", "reallocation", "plain")


class SGBlock(nn.Module):
    """Pre-norm block: ``x + attn(LN(x))``, ``x + mlp(LN(x))``; passes the significance map on.

    ``kind``: ``hybrid`` (emits a map), ``reallocation`` (consumes it) or ``plain`` (neither)."""

    def __init__(self, dim: int, num_heads: int, kind: str, sr_ratio: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, proj_drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 norm_eps: float = 1e-6, qk_scale: Optional[float] = None) -> None:
        super().__init__()
        if kind not in BLOCK_KINDS:
            raise ValueError(f"block kind must be one of {BLOCK_KINDS}, got {kind!r}")
        self.kind = kind
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        if kind == "hybrid":
            self.attn = HybridScaleAttention(dim, num_heads, sr_ratio, qkv_bias, attn_drop, proj_drop, qk_scale)
        elif kind == "reallocation":
            self.attn = ReallocationAttention(dim, num_heads, sr_ratio, qkv_bias, attn_drop, proj_drop, qk_scale)
        else:
            self.attn = PlainAttention(dim, num_heads, qkv_bias, attn_drop, proj_drop, qk_scale)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), proj_drop)

    def forward(self, x: torch.Tensor, h: int, w: int,
                significance: Optional[Significance]) -> Tuple[torch.Tensor, Optional[Significance]]:
        if self.kind == "hybrid":
            if significance is not None:
                raise RuntimeError("a hybrid-scale block received an unconsumed significance map")
            y, significance = self.attn(self.norm1(x), h, w)
        elif self.kind == "reallocation":
            if significance is None:
                raise RuntimeError("a token-reallocation block received no significance map")
            y, significance = self.attn(self.norm1(x), h, w, significance), None
        else:
            y, significance = self.attn(self.norm1(x), h, w), None  # the authors' plain attention drops it
        x = x + self.drop_path(y)
        x = x + self.drop_path(self.mlp(self.norm2(x), h, w))
        return x, significance


class SGStage(nn.Module):
    """(patch merging) -> blocks -> LayerNorm; NCHW in and out, the significance map passed through."""

    def __init__(self, dim: int, dim_out: int, depth: int, num_heads: int, sr_ratio: int, kinds: Sequence[str],
                 mlp_ratio: float, qkv_bias: bool, proj_drop: float, attn_drop: float, drop_path: Sequence[float],
                 norm_eps: float, downsample: bool, qk_scale: Optional[float] = None) -> None:
        super().__init__()
        self.grad_checkpointing = False
        self.downsample = PatchMerging(dim, dim_out) if downsample else nn.Identity()
        self.blocks = nn.ModuleList([
            SGBlock(dim_out, num_heads, kinds[j], sr_ratio, mlp_ratio, qkv_bias, proj_drop, attn_drop,
                    drop_path[j], norm_eps, qk_scale)
            for j in range(depth)
        ])
        self.norm = nn.LayerNorm(dim_out, eps=norm_eps)

    def forward(self, x: torch.Tensor,
                significance: Optional[Significance]) -> Tuple[torch.Tensor, Optional[Significance]]:
        x = self.downsample(x)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x, significance = checkpoint(blk, x, h, w, significance)
            else:
                x, significance = blk(x, h, w, significance)
        return _tokens_to_map(self.norm(x), h, w), significance


def _conv_out(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


def block_kinds(depths: Sequence[int], sr_ratios: Sequence[int]) -> List[List[str]]:
    """The authors' layout: in stages before the last, odd blocks (j = 1, 3, ...) reallocate tokens
    and even blocks are hybrid-scale, unless the stage has no spatial reduction (plain attention);
    the last stage is plain attention (hybrid-scale if it has a reduction)."""
    last = len(depths) - 1
    kinds = []
    for i, (depth, sr) in enumerate(zip(depths, sr_ratios)):
        if sr == 1:
            kinds.append(["plain"] * depth)
        else:
            kinds.append(["reallocation" if (j % 2 == 1 and i < last) else "hybrid" for j in range(depth)])
    return kinds


def check_configuration(img_size: Tuple[int, int], depths: Sequence[int], sr_ratios: Sequence[int],
                        num_heads: Sequence[int]) -> None:
    """Raise ValueError, naming the stage and the rule, for a configuration the authors' code cannot
    run: an unconsumed significance map reaching a hybrid-scale block, or a stage size that the 7x7
    windows or the token-reallocation groups do not divide."""
    h, w = img_size
    for k, s, p in ((3, 2, 1), (3, 1, 1), (3, 2, 1)):  # the stem
        h, w = _conv_out(h, k, s, p), _conv_out(w, k, s, p)
    live = None  # stage whose significance map is waiting to be consumed
    for i, kinds in enumerate(block_kinds(depths, sr_ratios)):
        if i > 0:
            h, w = _conv_out(h, 3, 2, 1), _conv_out(w, 3, 2, 1)
        sr = sr_ratios[i]
        for kind in kinds:
            if kind == "hybrid":
                if live == i:
                    raise ValueError(
                        f"stage {i + 1} is the last stage and has a spatial reduction ({sr}), so all its blocks are "
                        f"hybrid-scale and the second one would receive the first one's significance map (the "
                        f"authors' code fails there): give it depth 1 or spatial reduction 1"
                    )
                if live is not None:
                    raise ValueError(
                        f"stage {live + 1} ends with a hybrid-scale block (depth {depths[live]} is odd), so its "
                        f"significance map reaches the first block of stage {i + 1}, which is hybrid-scale too "
                        f"and cannot take it (the authors' code fails there): the stages whose next stage has a "
                        f"spatial reduction > 1 need an even depth (got depths {tuple(depths)})"
                    )
                if h % WINDOW or w % WINDOW:
                    raise ValueError(
                        f"img_size {img_size[0]}x{img_size[1]} gives stage {i + 1} a {h}x{w} map, which the 7x7 "
                        f"windows of the hybrid-scale attention do not divide (224 and its multiples work)"
                    )
                if h < sr or w < sr:
                    raise ValueError(f"stage {i + 1}'s {h}x{w} map is smaller than its spatial reduction {sr}")
                if num_heads[i] % 2:
                    raise ValueError(f"stage {i + 1} splits its heads in two halves: num_heads {num_heads[i]} is odd")
                live = i
            elif kind == "reallocation":
                if sr not in REALLOCATION:
                    raise ValueError(f"stage {i + 1}: token reallocation is defined for spatial reductions "
                                     f"{sorted(REALLOCATION)} only, got {sr}")
                try:
                    ReallocationAttention.bounds(h * w, REALLOCATION[sr])
                except ValueError as e:
                    raise ValueError(
                        f"img_size {img_size[0]}x{img_size[1]} gives stage {i + 1} {h}x{w} = {h * w} tokens, which "
                        f"the token-reallocation groups of spatial reduction {sr} do not divide ({e}); 224 and "
                        f"its multiples work"
                    ) from None
                live = None
            else:
                live = None


class SGFormer(nn.Module):
    """SG-Former backbone + classifier (timm interface).

    Args:
        img_size: the input size the model is built for (and the only one it takes).
        embed_dims / depths / num_heads / mlp_ratios / sr_ratios: per stage (the authors' names).
        qkv_bias: bias of the query/key/value projections.
        qk_scale: attention logit scale (default ``head_dim ** -0.5``).
        norm_eps: eps of the block and stage LayerNorms (the authors' variants: 1e-6).
        drop_rate: dropout before the classifier (not in the authors' model: 0 reproduces it).
        proj_drop_rate / attn_drop_rate: the authors' ``drop_rate`` / ``attn_drop_rate``.
        drop_path_rate: stochastic depth, linear over all blocks (the authors train S/M/B with 0.1/0.2/0.4).
    """

    def __init__(
        self,
        img_size: Union[int, Tuple[int, int]] = 224,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        embed_dims: Sequence[int] = (64, 128, 256, 512),
        depths: Sequence[int] = (2, 4, 16, 1),
        num_heads: Sequence[int] = (2, 4, 8, 16),
        mlp_ratios: Union[float, Sequence[float]] = 4.0,
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        qkv_bias: bool = True,
        qk_scale: Optional[float] = None,
        norm_eps: float = 1e-6,
        drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        num_stages = len(depths)
        if not (len(embed_dims) == len(num_heads) == len(sr_ratios) == num_stages):
            raise ValueError("embed_dims, depths, num_heads and sr_ratios need one entry per stage")
        if isinstance(mlp_ratios, (int, float)):
            mlp_ratios = (mlp_ratios,) * num_stages
        if global_pool not in ("avg", ""):
            raise ValueError(f"SG-Former averages its tokens: global_pool must be 'avg' or '', got {global_pool!r}")
        self.img_size = to_2tuple(img_size)
        check_configuration(self.img_size, depths, sr_ratios, num_heads)
        self.min_input_size = min(self.img_size)  # the input checks' "too small" threshold
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.drop_rate = drop_rate
        self.num_features = self.head_hidden_size = embed_dims[-1]

        self.stem = Stem(in_chans, embed_dims[0])
        grid = (_conv_out(_conv_out(self.img_size[0], 3, 2, 1), 3, 2, 1),
                _conv_out(_conv_out(self.img_size[1], 3, 2, 1), 3, 2, 1))
        self.grid_size = grid
        # trainable, initialised to the 2-D sin-cos embedding (the authors' pos_embed.py)
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], embed_dims[0]))

        dpr = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)
        kinds = block_kinds(depths, sr_ratios)
        self.stages = nn.Sequential()
        self.feature_info: List[dict] = []
        prev = embed_dims[0]
        for i in range(num_stages):
            self.stages.append(SGStage(
                prev, embed_dims[i], depths[i], num_heads[i], sr_ratios[i], kinds[i], mlp_ratios[i], qkv_bias,
                proj_drop_rate, attn_drop_rate, dpr[i], norm_eps, downsample=i > 0, qk_scale=qk_scale,
            ))
            prev = embed_dims[i]
            self.feature_info.append(dict(num_chs=prev, reduction=4 * 2 ** i, module=f"stages.{i}"))
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights()

    def init_weights(self) -> None:
        """The authors' initialisation; nothing to do on the meta device."""
        if self.pos_embed.is_meta:
            return
        self.apply(_init_weights)
        with torch.no_grad():
            self.pos_embed.copy_(sincos_2d_embed(self.pos_embed.shape[-1], *self.grid_size).unsqueeze(0))

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        # The authors' list ('pos_embed1', ..., 'cls_token') names no parameter of their model, so
        # their pos_embed is decayed like every weight of 2+ dimensions.
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(
            stem=r"^stem|^pos_embed",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                (r"^stages\.(\d+)\.norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for s in self.stages:
            s.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        ref = self.pos_embed
        self.head = (nn.Linear(self.num_features, num_classes, device=ref.device, dtype=ref.dtype)
                     if num_classes > 0 else nn.Identity())

    @property
    def input_rules(self) -> InputRules:
        """SG-Former takes only the size it was built for (checked by its forward and archzoo's pre-hook)."""
        return InputRules(
            channels=self.in_chans, min_size=self.min_input_size, min_size_reason="the size it was built for",
            fixed_size=self.img_size,
            fixed_size_reason="its position embedding is added without interpolation and its token-reallocation "
                              "groups and 7x7 windows are sized for it; resize the input, or build the model with "
                              "img_size=(H, W) if the token groups allow it (224 and its multiples do)")

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        check_input(self, x)
        x, h, w = self.stem(x)
        return _tokens_to_map(x + self.pos_embed, h, w)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stage outputs (after each stage's LayerNorm, which is on the main path: ``norm`` has
        nothing to add) and, unless ``intermediates_only``, the final NCHW map."""
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be NCHW or NHWC, got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        x = self._embed(x)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[: max_index + 1]
        intermediates = []
        significance = None
        for i, stage in enumerate(stages):
            x, significance = stage(x, significance)
            if i in take_indices:
                intermediates.append(x if output_fmt == "NCHW" else x.permute(0, 2, 3, 1))
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: Union[int, List[int]] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or max_index < len(self.feature_info) - 1:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, position embedding and stages: (N, C_last, H/32, W/32), after the last LayerNorm."""
        x = self._embed(x)
        significance = None
        for stage in self.stages:
            x, significance = stage(x, significance)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = x.flatten(2).mean(dim=2)  # the authors' mean over tokens
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(m: nn.Module) -> None:
    """The authors' init: trunc-normal(0.02) Linear, He-normal (fan-out) Conv2d, unit norms, zero biases."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ---- the authors' checkpoints ---------------------------------------------------------------------
_ATTN_RENAMES = {
    "hybrid": {"norm": "sr_norm", "q1": "q_global", "kv1": "kv_global", "q2": "q_local", "kv2": "kv_local"},
    "reallocation": {"kv1": "kv_row", "kv2": "kv_col", "f1": "merge.0", "f2": "merge.1", "f3": "merge.2"},
    "plain": {},
}


def checkpoint_filter_fn(state_dict: Dict[str, torch.Tensor], model: SGFormer) -> Dict[str, torch.Tensor]:
    """Map the authors' ``SGFormer`` keys onto :class:`SGFormer` (archzoo's own dicts pass through);
    resample the position embedding (bicubic, as the authors' ``interpolate_pos_embed``) when the
    model was built for another input size."""
    state_dict = unwrap_state_dict(state_dict)  # archzoo's order: EMA weights first
    if not any(k.startswith("stages.") or k.startswith("stem.") for k in state_dict):
        state_dict = _rename_authors_keys(state_dict)
    pos = state_dict.get("pos_embed")
    if pos is not None and not pos.is_meta and pos.shape != model.pos_embed.shape:
        side = int(round(math.sqrt(pos.shape[1])))
        state_dict["pos_embed"] = resample_abs_pos_embed(
            pos, list(model.grid_size), old_size=[side, side], num_prefix_tokens=0, interpolation="bicubic",
            antialias=False,
        )
    elif pos is not None and pos.is_meta and pos.shape != model.pos_embed.shape:
        state_dict["pos_embed"] = torch.empty(model.pos_embed.shape, device="meta", dtype=pos.dtype)
    return state_dict


def _rename_authors_keys(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    # a block's kind shows in its own keys: the sr conv (hybrid), the merge layers (reallocation)
    kinds: Dict[str, str] = {}
    for k in state_dict:
        m = re.match(r"(block\d+\.\d+)\.attn\.(sr|f1|q)\.", k)
        if m:
            kind = {"sr": "hybrid", "f1": "reallocation", "q": "plain"}[m.group(2)]
            if kinds.get(m.group(1)) != "reallocation":  # reallocation blocks also have a q
                kinds[m.group(1)] = kind
    out = {}
    for k, v in state_dict.items():
        if m := re.match(r"patch_embed1\.conv\.(\d)\.(c|bn)\.(.*)", k):
            k = f"stem.conv{int(m.group(1)) // 2 + 1}.{'conv' if m.group(2) == 'c' else 'bn'}.{m.group(3)}"
        elif k.startswith("patch_embed1.norm."):
            k = "stem.norm." + k[len("patch_embed1.norm."):]
        elif m := re.match(r"patch_embed(\d+)\.(conv\d)\.(c|bn)\.(.*)", k):
            k = (f"stages.{int(m.group(1)) - 1}.downsample.{m.group(2)}."
                 f"{'conv' if m.group(3) == 'c' else 'bn'}.{m.group(4)}")
        elif m := re.match(r"block(\d+)\.(\d+)\.(.*)", k):
            rest = m.group(3)
            if a := re.match(r"attn\.([a-z_0-9]+)\.(.*)", rest):
                name = _ATTN_RENAMES[kinds[f"block{m.group(1)}.{m.group(2)}"]].get(a.group(1), a.group(1))
                rest = f"attn.{name}.{a.group(2)}"
            rest = rest.replace("mlp.dwconv.dwconv.", "mlp.dwconv.")
            k = f"stages.{int(m.group(1)) - 1}.blocks.{m.group(2)}.{rest}"
        elif m := re.match(r"norm(\d+)\.(.*)", k):
            k = f"stages.{int(m.group(1)) - 1}.norm.{m.group(2)}"
        out[k] = v
    return out


# ---- registry -------------------------------------------------------------------------------------
def _cfg(url: str = "", **kwargs: Any) -> dict:
    # the authors' data config: timm 0.3.4's ViT _cfg (crop 0.9, bicubic, ImageNet mean/std)
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7), "fixed_input_size": True,
        "crop_pct": 0.9, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.conv1.conv", "classifier": "head", "license": "unknown",
        "paper_ids": "arXiv:2308.12216", "origin_url": "https://github.com/OliverRensu/SG-Former", **kwargs,
    }


# The authors' checkpoints are on Google Drive (no hub URL): load them with archzoo's
# checkpoint_path, through checkpoint_filter_fn.
default_cfgs = generate_default_cfgs({
    "sgformer_s.in1k": _cfg(),
    "sgformer_m.in1k": _cfg(),
    "sgformer_b.in1k": _cfg(),
})


def _create_sgformer(variant: str, pretrained: bool = False, **kwargs: Any) -> SGFormer:
    return build_model_with_cfg(
        SGFormer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), feature_cls="getter"),
        **kwargs,
    )


# The authors' sgformer_s / _m / _b (patch_size 4, mlp ratio 4, qkv_bias, LayerNorm eps 1e-6,
# reductions 8/4/2/1); their README trains them with drop_path 0.1 / 0.2 / 0.4.
_S = dict(embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), depths=(2, 4, 16, 1))
_M = dict(embed_dims=(64, 128, 256, 512), num_heads=(2, 4, 8, 16), depths=(2, 6, 28, 2))
_B = dict(embed_dims=(96, 192, 384, 768), num_heads=(4, 6, 12, 24), depths=(4, 6, 24, 2))


@register_model
def sgformer_s(pretrained: bool = False, **kwargs: Any) -> SGFormer:
    """SG-Former-S (22.5 M parameters, 4.8 GMACs at 224)."""
    return _create_sgformer("sgformer_s", pretrained, **dict(_S, **kwargs))


@register_model
def sgformer_m(pretrained: bool = False, **kwargs: Any) -> SGFormer:
    """SG-Former-M (38.7 M parameters, 7.5 GMACs at 224)."""
    return _create_sgformer("sgformer_m", pretrained, **dict(_M, **kwargs))


@register_model
def sgformer_b(pretrained: bool = False, **kwargs: Any) -> SGFormer:
    """SG-Former-B (78.0 M parameters, 15.6 GMACs at 224)."""
    return _create_sgformer("sgformer_b", pretrained, **dict(_B, **kwargs))


@register_reference("sgformer")
def _reference_sgformer(config: dict, meta: dict) -> nn.Module:
    """archzoo's equivalent of the authors' ``SGFormer(**config)`` (their constructor defaults where a
    key is absent: qkv_bias False, nn.LayerNorm's eps 1e-5). Their stem ignores ``in_chans`` (it is
    hard-coded to 3 channels) and ``patch_size`` (always stride 4), and ``linear`` does nothing."""
    return SGFormer(
        img_size=config.get("img_size", 224),
        in_chans=3,
        num_classes=config.get("num_classes", 1000),
        embed_dims=config.get("embed_dims", (64, 128, 256, 512)),
        depths=config.get("depths", (3, 4, 6, 3)),
        num_heads=config.get("num_heads", (1, 2, 4, 8)),
        mlp_ratios=config.get("mlp_ratios", (4, 4, 4, 4)),
        sr_ratios=config.get("sr_ratios", (8, 4, 2, 1)),
        qkv_bias=config.get("qkv_bias", False),
        qk_scale=config.get("qk_scale"),
        norm_eps=config.get("ln_eps", 1e-5),
        drop_path_rate=config.get("drop_path_rate", 0.0),  # inactive in eval mode, as the authors'
    )
