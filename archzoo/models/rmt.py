"""RMT: Retentive Networks Meet Vision Transformers (Fan et al., CVPR 2024, arXiv:2309.11523).

Authors' code: https://github.com/qhfan/RMT (``classfication_release/RMT.py`` and, for the
token-labelling models RMT-S*/B*/L*, ``classification_token_label_release/RMT.py``).

RMT's Manhattan Self-Attention (MaSA) adds RetNet's explicit decay to vision attention: the
attention logits of a token pair get ``decay_head * manhattan_distance`` added before the softmax
(``decay_head = log(1 - 2^-(a + r * head / heads))`` is negative, so far tokens are damped). Early
stages decompose the attention along the two image axes (first along W inside each row, then along H
inside each column, each with a 1-D ``|i - j|`` decay), the last stage uses the whole 2-D mask.
Queries and keys get a RoPE-like rotation ("theta shift") over the *raster* index ``y * W + x``; the
value path has a 5x5 depthwise "LePE" added to the attention output. Each block starts with a 3x3
depthwise conditional positional encoding (CPE); the FFN has a 3x3 depthwise convolution with its own
residual between its two linear layers. The head is Linear projection -> BatchNorm -> swish ->
average pool -> classifier; the token-labelling models add an auxiliary per-token classifier whose
maximum over tokens is added (weight 0.5) to the logits at inference.

Layout: channels-last (N, H, W, C) inside the stages, as in the authors' code; ``forward_features``
and ``forward_intermediates`` return NCHW maps. Unlike the authors (whose ``layers.i`` end with the
downsampling of the *next* stage), each ``stages.i`` starts with its own downsampling so that
feature maps come out at the stage's own resolution; ``checkpoint_filter_fn`` renames the keys.

The decay and rotation angles are buffers in the authors' state dict (``layers.i.Relpos.{angle,
decay}``); the masks and sin/cos tables themselves are rebuilt from them at every forward for the
input's actual size, so a model built or loaded for 224x224 computes correct masks at any size.
"""
from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerScale, SelectAdaptivePool2d, calculate_drop_path_rates, trunc_normal_
from timm.models import register_model
from timm.models._builder import build_model_with_cfg
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.reference import register_reference

__all__ = ["RMT", "checkpoint_filter_fn"]

RelPos = Tuple[Tuple[torch.Tensor, torch.Tensor], Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]]


def _nhwc_dwconv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Apply a (depthwise) NCHW conv to an NHWC tensor."""
    return conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def rotate_every_two(x: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (x0, x1) -> (-x1, x0), pairs being (even, odd) channels."""
    x1, x2 = x[..., ::2], x[..., 1::2]
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


def theta_shift(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    return x * cos + rotate_every_two(x) * sin


class RetentionRelPos(nn.Module):
    """Per-stage decay rates and rotation angles, and the masks/tables built from them.

    ``decay[h] = log(1 - 2^-(init_value + heads_range * h / num_heads))``; the angles are RoPE's
    ``10000^-linspace(0, 1, key_dim / 2)``, each repeated for the two channels of a pair. Both are
    computed in float32 like the authors' buffers and kept as persistent buffers (they are in the
    authors' checkpoints).
    """

    def __init__(self, dim: int, num_heads: int, init_value: float, heads_range: float) -> None:
        super().__init__()
        key_dim = dim // num_heads
        angle = 1.0 / (10000 ** torch.linspace(0, 1, key_dim // 2, dtype=torch.float32))
        angle = angle.repeat_interleave(2)
        heads = torch.arange(num_heads, dtype=torch.float32)
        decay = torch.log(1 - 2 ** (-init_value - heads_range * heads / num_heads))
        self.num_heads = num_heads
        self.register_buffer("angle", angle)
        self.register_buffer("decay", decay)

    def sin_cos(self, h: int, w: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Rotation tables (h, w, key_dim) over the raster index y * w + x."""
        index = torch.arange(h * w, device=self.decay.device, dtype=self.decay.dtype)
        phase = index[:, None] * self.angle[None, :]
        return torch.sin(phase).reshape(h, w, -1), torch.cos(phase).reshape(h, w, -1)

    def decay_1d(self, n: int) -> torch.Tensor:
        """(heads, n, n): decay * |i - j|."""
        idx = torch.arange(n, device=self.decay.device, dtype=self.decay.dtype)
        return (idx[:, None] - idx[None, :]).abs() * self.decay[:, None, None]

    def decay_2d(self, h: int, w: int) -> torch.Tensor:
        """(heads, h*w, h*w): decay * Manhattan distance between raster positions."""
        ys = torch.arange(h, device=self.decay.device, dtype=self.decay.dtype)
        xs = torch.arange(w, device=self.decay.device, dtype=self.decay.dtype)
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack((yy, xx), dim=-1).reshape(h * w, 2)
        dist = (grid[:, None, :] - grid[None, :, :]).abs().sum(-1)
        return dist * self.decay[:, None, None]

    def forward(self, h: int, w: int, decomposed: bool) -> RelPos:
        sc = self.sin_cos(h, w)
        if decomposed:
            return sc, (self.decay_1d(h), self.decay_1d(w))
        return sc, self.decay_2d(h, w)


class ManhattanRetention(nn.Module):
    """Manhattan self-attention (MaSA) on NHWC input.

    ``decomposed=True``: softmax(q k^T + decay*|dx|) inside every row, then softmax(q k^T +
    decay*|dy|) inside every column applied to the result (the authors' ``VisionRetentionChunk``).
    ``decomposed=False``: one softmax over all tokens with the 2-D Manhattan-distance decay
    (``VisionRetentionAll``). LePE (5x5 depthwise conv of v) is added before the output projection.
    """

    def __init__(self, dim: int, num_heads: int, decomposed: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = dim // num_heads
        self.scale = self.key_dim ** -0.5
        self.decomposed = decomposed
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.lepe = nn.Conv2d(dim, dim, 5, 1, 2, groups=dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rel_pos: RelPos) -> torch.Tensor:
        b, h, w, c = x.shape
        (sin, cos), mask = rel_pos
        n = self.num_heads
        q = self.q_proj(x)
        k = self.k_proj(x) * self.scale  # the authors scale k before the rotation
        v = self.v_proj(x)
        lepe = _nhwc_dwconv(self.lepe, v)

        q = theta_shift(q.view(b, h, w, n, -1).permute(0, 3, 1, 2, 4), sin, cos)  # (b n h w d)
        k = theta_shift(k.view(b, h, w, n, -1).permute(0, 3, 1, 2, 4), sin, cos)
        if self.decomposed:
            mask_h, mask_w = mask
            # along W: rows are independent sequences
            qw, kw = q.transpose(1, 2), k.transpose(1, 2)  # (b h n w d)
            vw = v.view(b, h, w, n, -1).permute(0, 1, 3, 2, 4)  # (b h n w d)
            attn = torch.softmax(qw @ kw.transpose(-1, -2) + mask_w, dim=-1)
            vw = attn @ vw
            # along H: columns are independent sequences, on the W-mixed values
            qh, kh = q.permute(0, 3, 1, 2, 4), k.permute(0, 3, 1, 2, 4)  # (b w n h d)
            vh = vw.permute(0, 3, 2, 1, 4)  # (b w n h d)
            attn = torch.softmax(qh @ kh.transpose(-1, -2) + mask_h, dim=-1)
            out = (attn @ vh).permute(0, 3, 1, 2, 4).reshape(b, h, w, c)
        else:
            q, k = q.flatten(2, 3), k.flatten(2, 3)  # (b n hw d)
            vf = v.view(b, h * w, n, -1).transpose(1, 2)
            attn = torch.softmax(q @ k.transpose(-1, -2) + mask, dim=-1)
            out = (attn @ vf).transpose(1, 2).reshape(b, h, w, c)
        return self.out_proj(out + lepe)


class ConvFFN(nn.Module):
    """fc1 -> GELU -> (+ 3x3 depthwise conv, with its own residual) -> fc2, on NHWC input."""

    def __init__(self, dim: int, hidden_dim: int, act_layer: Callable = nn.GELU, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, 1, 1, groups=hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act(self.fc1(x)))
        x = x + _nhwc_dwconv(self.dwconv, x)
        return self.drop2(self.fc2(x))


class RMTBlock(nn.Module):
    """x + CPE(x); x + LS(MaSA(LN(x))); x + LS(FFN(LN(x))) (NHWC)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        decomposed: bool,
        drop_path: float = 0.0,
        ls_init_value: Optional[float] = None,
    ) -> None:
        super().__init__()
        self.cpe = nn.Conv2d(dim, dim, 3, 1, 1, groups=dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.retention = ManhattanRetention(dim, num_heads, decomposed)
        self.ls1 = LayerScale(dim, ls_init_value) if ls_init_value is not None else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = ConvFFN(dim, int(mlp_ratio * dim))
        self.ls2 = LayerScale(dim, ls_init_value) if ls_init_value is not None else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, rel_pos: RelPos) -> torch.Tensor:
        x = x + _nhwc_dwconv(self.cpe, x)
        x = x + self.drop_path1(self.ls1(self.retention(self.norm1(x), rel_pos)))
        x = x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
        return x


class Downsample(nn.Module):
    """3x3 stride-2 conv + BatchNorm between stages (NHWC in and out)."""

    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(dim, dim_out, 3, 2, 1)
        self.norm = nn.BatchNorm2d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 3, 1, 2))).permute(0, 2, 3, 1)


class RMTStage(nn.Module):
    def __init__(
        self,
        dim: int,
        dim_out: int,
        depth: int,
        num_heads: int,
        decay_init: float,
        heads_range: float,
        mlp_ratio: float,
        decomposed: bool,
        drop_path: Sequence[float],
        ls_init_value: Optional[float],
        downsample: bool,
    ) -> None:
        super().__init__()
        self.decomposed = decomposed
        self.grad_checkpointing = False
        self.downsample = Downsample(dim, dim_out) if downsample else nn.Identity()
        self.rel_pos = RetentionRelPos(dim_out, num_heads, decay_init, heads_range)
        self.blocks = nn.ModuleList([
            RMTBlock(dim_out, num_heads, mlp_ratio, decomposed, drop_path[j], ls_init_value) for j in range(depth)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample(x)
        rel_pos = self.rel_pos(x.shape[1], x.shape[2], self.decomposed)
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, rel_pos)
            else:
                x = blk(x, rel_pos)
        return x


def _stem(in_chans: int, dim: int) -> nn.Sequential:
    """Four 3x3 convs (strides 2, 1, 2, 1) with BN; GELU after all but the last (stride 4)."""
    half = dim // 2
    return nn.Sequential(
        nn.Conv2d(in_chans, half, 3, 2, 1), nn.BatchNorm2d(half), nn.GELU(),
        nn.Conv2d(half, half, 3, 1, 1), nn.BatchNorm2d(half), nn.GELU(),
        nn.Conv2d(half, dim, 3, 2, 1), nn.BatchNorm2d(dim), nn.GELU(),
        nn.Conv2d(dim, dim, 3, 1, 1), nn.BatchNorm2d(dim),
    )


class RMT(nn.Module):
    """RMT backbone + classifier (timm interface).

    Args:
        embed_dims / depths / num_heads / mlp_ratios: per stage.
        decay_init_values / decay_heads_ranges: the authors' ``init_values`` / ``heads_ranges``
            (the decay of head h is ``log(1 - 2^-(init + range * h / heads))``).
        decomposed: per stage, axis-decomposed MaSA (the authors' ``chunkwise_recurrents``).
        layer_scales / ls_init_value: per-stage layer scale and its initial value.
        projection: width of the Linear -> BN -> swish head projection.
        token_label: add the token-labelling auxiliary head (RMT-S*/B*/L*).
    """

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        embed_dims: Sequence[int] = (64, 128, 256, 512),
        depths: Sequence[int] = (2, 2, 8, 2),
        num_heads: Sequence[int] = (4, 4, 8, 16),
        decay_init_values: Sequence[float] = (2, 2, 2, 2),
        decay_heads_ranges: Sequence[float] = (4, 4, 6, 6),
        mlp_ratios: Sequence[float] = (3, 3, 3, 3),
        decomposed: Sequence[bool] = (True, True, False, False),
        layer_scales: Sequence[bool] = (False, False, False, False),
        ls_init_value: float = 1e-6,
        projection: int = 1024,
        token_label: bool = False,
        aux_weight: float = 0.5,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        num_stages = len(depths)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.token_label = token_label
        self.aux_weight = aux_weight
        self.return_dense = False  # token-label training: forward returns (logits, per-token aux logits)
        self.drop_rate = drop_rate
        self.num_features = embed_dims[-1]
        self.head_hidden_size = projection

        self.stem = _stem(in_chans, embed_dims[0])
        dpr = calculate_drop_path_rates(drop_path_rate, list(depths), stagewise=True)
        self.stages = nn.Sequential()
        self.feature_info: List[dict] = []
        prev = embed_dims[0]
        for i in range(num_stages):
            self.stages.append(RMTStage(
                prev, embed_dims[i], depths[i], num_heads[i], decay_init_values[i], decay_heads_ranges[i],
                mlp_ratios[i], bool(decomposed[i]), dpr[i], ls_init_value if layer_scales[i] else None,
                downsample=i > 0,
            ))
            prev = embed_dims[i]
            self.feature_info.append(dict(num_chs=prev, reduction=4 * 2 ** i, module=f"stages.{i}"))

        # head: per-token projection, BN, swish, then pooling and the classifier
        self.head_proj = nn.Linear(self.num_features, projection)
        self.head_norm = nn.BatchNorm2d(projection)
        self.head_act = nn.SiLU()
        self.pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(projection, num_classes) if num_classes > 0 else nn.Identity()
        if token_label:
            self.aux_head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # The authors' model-level init overrides the retention's own xavier init for every Linear.
        # Nothing to initialise on the meta device (and trunc_normal_ is slow there).
        if isinstance(m, nn.Linear) and not m.weight.is_meta:
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(
            stem=r"^stem",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^stages\.(\d+)\.downsample", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                (r"^head_(proj|norm)", (99999,)),
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
            self.global_pool = global_pool
            self.pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        ref = self.stem[0].weight  # the head may have been pruned away
        dev, dt = ref.device, ref.dtype
        self.head = nn.Linear(self.head_hidden_size, num_classes, device=dev, dtype=dt) if num_classes > 0 else nn.Identity()
        if self.token_label:
            self.aux_head = (nn.Linear(self.num_features, num_classes, device=dev, dtype=dt)
                             if num_classes > 0 else nn.Identity())

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stage outputs (NCHW or NHWC) and, unless ``intermediates_only``, the final NCHW map."""
        assert output_fmt in ("NCHW", "NHWC"), "output_fmt must be NCHW or NHWC"
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        x = self.stem(x).permute(0, 2, 3, 1)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[: max_index + 1]
        intermediates = []
        for i, stage in enumerate(stages):
            x = stage(x)
            if i in take_indices:
                intermediates.append(x.permute(0, 3, 1, 2).contiguous() if output_fmt == "NCHW" else x)
        if intermediates_only:
            return intermediates
        return x.permute(0, 3, 1, 2), intermediates

    def prune_intermediate_layers(
        self, indices: Union[int, List[int]] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        if prune_head:
            self.head_proj = nn.Identity()
            self.head_norm = nn.Identity()
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and stages: (N, C_last, H/32, W/32)."""
        x = self.stem(x).permute(0, 2, 3, 1)
        x = self.stages(x)
        return x.permute(0, 3, 1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Projection, BN, swish, pooling, classifier; plus ``aux_weight`` x the token-label head's
        maximum over tokens for the token-labelling models (their inference output)."""
        tokens = x.permute(0, 2, 3, 1)
        y = self.head_act(self.head_norm(self.head_proj(tokens).permute(0, 3, 1, 2)))
        y = self.pool(y)
        if pre_logits:
            return y
        y = self.head(self.head_drop(y))
        if self.token_label and self.num_classes > 0:
            aux = self.aux_head(tokens.flatten(1, 2))  # (N, HW, classes)
            if self.return_dense and self.training:
                return y, aux
            y = y + self.aux_weight * aux.max(dim=1)[0]
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_AUTHORS_TOP = {"proj.": "head_proj.", "norm.": "head_norm."}


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map the authors' ``VisRetNet`` keys onto :class:`RMT` (already-converted dicts pass through)."""
    if "model" in state_dict and isinstance(state_dict["model"], dict):
        state_dict = state_dict["model"]
    if any(k.startswith("stem.") or k.startswith("stages.") for k in state_dict):
        return state_dict
    out = {}
    for k, v in state_dict.items():
        if k.startswith("patch_embed.proj."):
            k = "stem." + k[len("patch_embed.proj."):]
        elif m := re.match(r"layers\.(\d+)\.downsample\.(reduction|norm)\.(.*)", k):
            # the authors downsample at the end of stage i; here it opens stage i + 1
            k = f"stages.{int(m.group(1)) + 1}.downsample.{'conv' if m.group(2) == 'reduction' else 'norm'}.{m.group(3)}"
        elif k.startswith("layers."):
            k = "stages." + k[len("layers."):]
            k = k.replace(".Relpos.", ".rel_pos.")
            k = k.replace(".pos.conv.", ".cpe.")
            k = k.replace(".retention_layer_norm.", ".norm1.")
            k = k.replace(".final_layer_norm.", ".norm2.")
            k = k.replace(".retention.lepe.conv.", ".retention.lepe.")
            k = k.replace(".ffn.dwconv.conv.", ".mlp.dwconv.").replace(".ffn.", ".mlp.")
            if k.endswith(".gamma_1") or k.endswith(".gamma_2"):
                k = k[: -len("gamma_1")] + f"ls{k[-1]}.gamma"
                v = v.reshape(-1)
        else:
            for old, new in _AUTHORS_TOP.items():
                if k.startswith(old):
                    k = new + k[len(old):]
                    break
        out[k] = v
    return out


def _cfg(url: str = "", **kwargs: Any) -> dict:
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.0", "classifier": "head", "license": "unknown",
        "paper_ids": "arXiv:2309.11523", "origin_url": "https://github.com/qhfan/RMT", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "rmt_t.in1k": _cfg(),
    "rmt_s.in1k": _cfg(),
    "rmt_b.in1k": _cfg(),
    "rmt_l.in1k": _cfg(),
    "rmt_s_tl.in1k": _cfg(),
    "rmt_b_tl.in1k": _cfg(),
    "rmt_l_tl.in1k": _cfg(),
})


def _create_rmt(variant: str, pretrained: bool = False, **kwargs: Any) -> RMT:
    return build_model_with_cfg(
        RMT, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), feature_cls="getter"),
        **kwargs,
    )


# Variant configurations (the authors' RMT_T3, RMT_S, RMT_M2, RMT_L6). The authors train with
# drop_path_rate 0.1 / 0.15 / 0.4 / 0.5 (T / S / B / L); pass it to create_model for training.
_T = dict(embed_dims=(64, 128, 256, 512), depths=(2, 2, 8, 2), num_heads=(4, 4, 8, 16),
          decay_heads_ranges=(4, 4, 6, 6), mlp_ratios=(3, 3, 3, 3), decomposed=(True, True, False, False))
_S = dict(embed_dims=(64, 128, 256, 512), depths=(3, 4, 18, 4), num_heads=(4, 4, 8, 16),
          decay_heads_ranges=(4, 4, 6, 6), mlp_ratios=(4, 4, 3, 3), decomposed=(True, True, True, False))
_B = dict(embed_dims=(80, 160, 320, 512), depths=(4, 8, 25, 8), num_heads=(5, 5, 10, 16),
          decay_heads_ranges=(5, 5, 6, 6), mlp_ratios=(4, 4, 3, 3), decomposed=(True, True, True, False),
          layer_scales=(False, False, True, True))
_L = dict(embed_dims=(112, 224, 448, 640), depths=(4, 8, 25, 8), num_heads=(7, 7, 14, 20),
          decay_heads_ranges=(6, 6, 6, 6), mlp_ratios=(4, 4, 3, 3), decomposed=(True, True, True, False),
          layer_scales=(False, False, True, True))


@register_model
def rmt_t(pretrained: bool = False, **kwargs: Any) -> RMT:
    """RMT-T (14M / 2.5G in the authors' README)."""
    return _create_rmt("rmt_t", pretrained, **dict(_T, **kwargs))


@register_model
def rmt_s(pretrained: bool = False, **kwargs: Any) -> RMT:
    """RMT-S (27M / 4.5G)."""
    return _create_rmt("rmt_s", pretrained, **dict(_S, **kwargs))


@register_model
def rmt_b(pretrained: bool = False, **kwargs: Any) -> RMT:
    """RMT-B (54M / 9.7G; the authors' ``RMT_M2``)."""
    return _create_rmt("rmt_b", pretrained, **dict(_B, **kwargs))


@register_model
def rmt_l(pretrained: bool = False, **kwargs: Any) -> RMT:
    """RMT-L (95M / 18.2G; the authors' ``RMT_L6``)."""
    return _create_rmt("rmt_l", pretrained, **dict(_L, **kwargs))


@register_model
def rmt_s_tl(pretrained: bool = False, **kwargs: Any) -> RMT:
    """RMT-S* (token labelling: auxiliary per-token head)."""
    return _create_rmt("rmt_s_tl", pretrained, **dict(_S, token_label=True, **kwargs))


@register_model
def rmt_b_tl(pretrained: bool = False, **kwargs: Any) -> RMT:
    """RMT-B* (token labelling)."""
    return _create_rmt("rmt_b_tl", pretrained, **dict(_B, token_label=True, **kwargs))


@register_model
def rmt_l_tl(pretrained: bool = False, **kwargs: Any) -> RMT:
    """RMT-L* (token labelling)."""
    return _create_rmt("rmt_l_tl", pretrained, **dict(_L, token_label=True, **kwargs))


def _from_authors_config(config: dict) -> RMT:
    """Build the archzoo model equivalent to the authors' ``VisRetNet(**config)``."""
    n = len(config.get("depths", (2, 2, 6, 2)))
    return RMT(
        in_chans=config.get("in_chans", 3),
        num_classes=config.get("num_classes", 1000),
        embed_dims=config.get("embed_dims", (96, 192, 384, 768)),
        depths=config.get("depths", (2, 2, 6, 2)),
        num_heads=config.get("num_heads", (3, 6, 12, 24)),
        decay_init_values=config.get("init_values", (1,) * n),
        decay_heads_ranges=config.get("heads_ranges", (3,) * n),
        mlp_ratios=config.get("mlp_ratios", (3,) * n),
        decomposed=config.get("chunkwise_recurrents", (True, True, False, False)),
        layer_scales=config.get("layerscales", (False,) * n),
        ls_init_value=config.get("layer_init_values", 1e-6),
        projection=config.get("projection", 1024),
        token_label=config.get("token_label", False),
        drop_path_rate=config.get("drop_path_rate", 0.0),
    )


@register_reference("rmt")
def _reference_rmt(config: dict, meta: dict) -> nn.Module:
    return _from_authors_config(config)


@register_reference("rmt_tl")
def _reference_rmt_tl(config: dict, meta: dict) -> nn.Module:
    # the token-label release's VisRetNet defaults to token_label=True
    return _from_authors_config({"token_label": True, **config})
