"""MOAT: Alternating Mobile Convolution and Attention Brings Strong Vision Models (Yang et al., arXiv 2210.01820).

Authors' code (TensorFlow): https://github.com/google-research/deeplab2 (``model/pixel_encoder/moat.py``,
``model/layers/moat_blocks.py``, ``model/layers/moat_attention.py``); this module follows it at commit
64bc1c1 and loads its weights (Keras variable names or the names of the released TF1 checkpoints)
through :func:`checkpoint_filter_fn`, without TensorFlow.

A MOAT network is a convolutional stem (3x3/s2 conv + BN + GELU, 3x3 conv), two stages of MBConv blocks
(pre-norm BatchNorm, 1x1 expansion, depthwise 3x3, squeeze-excitation, 1x1 projection) and two stages
of MOAT blocks: the same MBConv without SE, followed by a pre-norm multi-head self-attention with a
2-D relative position bias (head size 32). Attention is global for classification or computed in
non-overlapping windows (no shift) for large inputs; the head is mean pool -> LayerNorm -> linear.

Details kept from the authors' code (each matters for loading their weights):
- TF ``padding='same'``: a stride-2 3x3 conv on an even map pads 0 before and 1 after (timm's
  ``Conv2dSame``); the shortcut average pool is TF's ``AveragePooling2D(padding='same')`` whose padded
  cells are excluded from the average;
- BatchNorm epsilon 1e-3 (Keras), LayerNorm epsilon 1e-5, exact (erf) GELU, but swish inside SE; the SE
  bottleneck is ``int(se_ratio * OUTPUT channels)`` wide and acts on the expanded features;
- the relative bias table ``[heads, 2P-1, 2P-1]`` (P = 14 at stride 16, 7 at stride 32) is resized
  bilinearly (half-pixel centres) to ``[2h-1, 2w-1]`` for an h x w attention window and indexed by
  KEY minus QUERY position (the opposite sign to Swin/timm);
- the softmax runs in (at least) float32; drop path rises linearly with the block index over all
  blocks (``rate * i / n_blocks``).

Deviation (a bug fix, not a change of the function the checkpoints were trained with): in eager TF2
the authors' ``Attention.build()`` freezes the reindexed relative bias at build time, so later
assignments of the table (checkpoint loading) are ignored there; here, as in the TF1 graphs the
checkpoints were trained in, the bias is always computed from the current table.
"""
from __future__ import annotations

import math
from functools import partial
import re
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD
from timm.layers import (
    DropPath,
    LayerNorm2d,
    NormMlpClassifierHead,
    SEModule,
    create_conv2d,
    get_same_padding,
    to_2tuple,
    use_fused_attn,
)
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs

from archzoo.reference import register_reference
from archzoo.validation import InputError, InputRules, default_input_rules

__all__ = ["MOAT", "MBConvBlock", "MOATBlock", "RelPosAttention", "checkpoint_filter_fn", "read_tf_checkpoint"]

BLOCK_TYPES = ("mbconv", "moat")
_BN_EPS = 1e-3  # Keras BatchNormalization default
# PyTorch's default running-statistics momentum, not the authors' Keras 0.99 (= PyTorch 0.01): with
# 0.01 the statistics of a short fine-tuning run (e.g. 114 steps on digits) stay near their init and
# eval-mode accuracy sits at chance. It changes no output of a loaded checkpoint; pass
# bn_momentum=0.01 for the authors' ImageNet training setting.
_BN_MOMENTUM = 0.1


def _per_stage(value: Any, n: int, name: str) -> tuple:
    """Broadcast a scalar to one value per stage; check the length of a sequence."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} needs {n} values (one per stage), got {len(value)}")
        return tuple(value)
    return (value,) * n


def _window(value: Any) -> Optional[Tuple[int, int]]:
    """A stage's window: None (global attention) or (height, width)."""
    if value is None:
        return None
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise ValueError(f"a window size is None, an int or [height, width]; got {value!r}")


class AvgPool2dSameExcludePad(nn.Module):
    """TF ``AveragePooling2D(padding='same')``: asymmetric 'same' padding whose padded cells are not
    counted in the average (timm's ``AvgPool2dSame`` counts them as zeros). Computed in at least float32,
    as the authors' code does."""

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size, self.stride
        dtype = x.dtype
        x = x.to(torch.promote_types(dtype, torch.float32))
        ih, iw = x.shape[-2:]
        ph, pw = get_same_padding(ih, k, s, 1), get_same_padding(iw, k, s, 1)
        if ph == 0 and pw == 0:
            return F.avg_pool2d(x, k, s).to(dtype)
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        ones = torch.ones((1, 1, ih, iw), dtype=x.dtype, device=x.device)
        # both averages divide by k*k; their ratio is the mean over the valid cells only
        out = F.avg_pool2d(F.pad(x, pad), k, s) / F.avg_pool2d(F.pad(ones, pad), k, s)
        return out.to(dtype)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding=same (exclude pad)"

    def tf_profiler_flops(self, inputs: tuple, output: torch.Tensor) -> int:
        """TF's AvgPool: kernel area x output elements (see ``archzoo.tf_flops``)."""
        return self.kernel_size ** 2 * output.numel()


class Stem(nn.Sequential):
    """conv_0 (3x3, stride 2) -> [norm_i -> GELU -> conv_{i+1} (3x3)]...; no norm/act after the last conv."""

    def __init__(self, in_chans: int, stem_size: Sequence[int], bn_eps: float = _BN_EPS,
                 bn_momentum: float = _BN_MOMENTUM) -> None:
        super().__init__()
        prev = in_chans
        for i, chs in enumerate(stem_size):
            self.add_module(f"conv_{i}", create_conv2d(prev, chs, 3, stride=2 if i == 0 else 1, padding="same", bias=True))
            if i < len(stem_size) - 1:
                self.add_module(f"norm_{i}", nn.BatchNorm2d(chs, eps=bn_eps, momentum=bn_momentum))
                self.add_module(f"act_{i}", nn.GELU())
            prev = chs


class MBConvBlock(nn.Module):
    """Inverted bottleneck with pre-norm: out = shortcut(x) + shrink(SE(dw(expand(BN(x))))).

    The shortcut is a TF-'same' average pool when strided, then a 1x1 conv (with bias) when the width
    changes. ``se_ratio=None`` removes the SE (MOAT blocks have none)."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, expansion_rate: int = 4,
                 se_ratio: Optional[float] = 0.25, pool_size: int = 2, kernel_size: int = 3,
                 drop_path: float = 0.0, bn_eps: float = _BN_EPS, bn_momentum: float = _BN_MOMENTUM) -> None:
        super().__init__()
        inner = out_chs * expansion_rate
        bn = lambda c: nn.BatchNorm2d(c, eps=bn_eps, momentum=bn_momentum)  # noqa: E731
        self.shortcut_pool = AvgPool2dSameExcludePad(pool_size, stride) if stride > 1 else nn.Identity()
        self.shortcut_conv = nn.Conv2d(in_chs, out_chs, 1, bias=True) if in_chs != out_chs else nn.Identity()
        self.pre_norm = bn(in_chs)
        self.expand_conv = nn.Conv2d(in_chs, inner, 1, bias=False)
        self.expand_norm = bn(inner)
        self.depthwise_conv = create_conv2d(inner, inner, kernel_size, stride=stride, padding="same",
                                            depthwise=True, bias=False)
        self.depthwise_norm = bn(inner)
        self.act = nn.GELU()
        if se_ratio is not None:
            # bottleneck from the block's OUTPUT width (not the expanded width), swish activation
            self.se = SEModule(inner, rd_channels=max(1, int(out_chs * se_ratio)), act_layer=nn.SiLU)
        else:
            self.se = nn.Identity()
        self.shrink_conv = nn.Conv2d(inner, out_chs, 1, bias=True)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward_mbconv(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut_conv(self.shortcut_pool(x))
        x = self.act(self.expand_norm(self.expand_conv(self.pre_norm(x))))
        x = self.act(self.depthwise_norm(self.depthwise_conv(x)))
        x = self.shrink_conv(self.se(x))
        return shortcut + self.drop_path(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_mbconv(x)


class RelPosAttention(nn.Module):
    """Multi-head self-attention over the tokens of one (h x w) window with the authors' 2-D
    relative position bias (``rel_pos_size=None``: no bias)."""

    def __init__(self, dim: int, head_size: int = 32, rel_pos_size: Optional[Tuple[int, int]] = None) -> None:
        super().__init__()
        self.num_heads = dim // head_size
        self.head_size = head_size
        inner = self.num_heads * head_size
        self.scale = head_size ** -0.5
        self.qkv = nn.Linear(dim, 3 * inner)
        self.proj = nn.Linear(inner, dim)
        if rel_pos_size is not None:
            p_h, p_w = rel_pos_size
            self.relative_position_embedding = nn.Parameter(torch.zeros(self.num_heads, 2 * p_h - 1, 2 * p_w - 1))
        else:
            self.register_parameter("relative_position_embedding", None)
        self.fused_attn = use_fused_attn()

    def relative_position_bias(self, height: int, width: int) -> torch.Tensor:
        """[heads, h*w, h*w] bias; entry (query (i, j), key (x, y)) = T[:, x - i + h - 1, y - j + w - 1]."""
        table = self.relative_position_embedding
        size = (2 * height - 1, 2 * width - 1)
        if tuple(table.shape[-2:]) != size:
            # tf.image.resize(bilinear, half_pixel_centers=True, antialias=False)
            table = F.interpolate(table.unsqueeze(0), size=size, mode="bilinear", align_corners=False).squeeze(0)
        ih = torch.arange(height, device=table.device)
        iw = torch.arange(width, device=table.device)
        rel_h = ih[None, :] - ih[:, None] + height - 1  # [query row, key row] -> key - query + h - 1
        rel_w = iw[None, :] - iw[:, None] + width - 1
        bias = table[:, rel_h[:, None, :, None], rel_w[None, :, None, :]]  # [heads, qi, qj, ki, kj]
        return bias.reshape(self.num_heads, height * width, height * width)

    def tf_profiler_graph_flops(self, x: torch.Tensor, size: Tuple[int, int]) -> int:
        """FLOPs TF's profiler charges once per graph for the authors' re-indexing of the table by two
        one-hot einsums ([n, 2h-1, 2w-1] x [h, h, 2h-1] -> [n, h, h, 2w-1], then x [w, w, 2w-1])."""
        if self.relative_position_embedding is None:
            return 0
        h, w = size
        n = self.num_heads
        return 2 * n * (h * h * (2 * w - 1) * (2 * h - 1) + h * h * w * w * (2 * w - 1))

    def forward(self, x: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
        B, L, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.num_heads, self.head_size).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias(*size) if self.relative_position_embedding is not None else None
        if self.fused_attn:
            mask = bias.to(q.dtype).unsqueeze(0) if bias is not None else None
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.scale)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1)
            if bias is not None:
                attn = attn + bias.to(attn.dtype)
            # the authors' softmax runs in float32 whatever the compute dtype
            attn = attn.to(torch.promote_types(attn.dtype, torch.float32)).softmax(-1).to(v.dtype)
            x = attn @ v
        x = x.transpose(1, 2).reshape(B, L, self.num_heads * self.head_size)
        return self.proj(x)


class MOATBlock(MBConvBlock):
    """MBConv (no SE), then ``x + Attention(LayerNorm(x))`` in windows (``window_size``) or globally."""

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, expansion_rate: int = 4, pool_size: int = 2,
                 kernel_size: int = 3, head_size: int = 32, window_size: Optional[Tuple[int, int]] = None,
                 rel_pos_size: Optional[Tuple[int, int]] = None, ln_eps: float = 1e-5, drop_path: float = 0.0,
                 bn_eps: float = _BN_EPS, bn_momentum: float = _BN_MOMENTUM) -> None:
        super().__init__(in_chs, out_chs, stride, expansion_rate, None, pool_size, kernel_size, drop_path,
                         bn_eps, bn_momentum)
        self.window_size = window_size
        self.attention_norm = nn.LayerNorm(out_chs, eps=ln_eps)
        self.attention = RelPosAttention(out_chs, head_size, rel_pos_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_mbconv(x)
        B, C, H, W = x.shape
        wh, ww = self.window_size or (H, W)
        if H % wh or W % ww:
            raise InputError(f"MOAT window attention needs a feature map divisible by the window {wh}x{ww}, got {H}x{W}")
        y = self.attention_norm(x.permute(0, 2, 3, 1))
        # windows: [B, H/wh, wh, W/ww, ww, C] -> [B * nW, wh * ww, C] (row-major inside a window)
        y = y.reshape(B, H // wh, wh, W // ww, ww, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, wh * ww, C)
        y = self.attention(y, (wh, ww))
        y = y.reshape(B, H // wh, W // ww, wh, ww, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)
        return x + self.drop_path(y)


class MoatStage(nn.Module):
    def __init__(self, blocks: List[nn.Module]) -> None:
        super().__init__()
        self.grad_checkpointing = False
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.blocks, x)
        return self.blocks(x)


class MOAT(nn.Module):
    """MOAT backbone + classifier; the constructor takes the authors' configuration names.

    Args:
        stem_size: output widths of the stem convs (the first has stride 2).
        block_type: per stage, ``'mbconv'`` or ``'moat'``.
        num_blocks, hidden_size, stage_stride: per stage depth, width and first-block stride.
        expansion_rate, se_ratio: MBConv expansion and SE ratio (of the output width; None: no SE).
        head_size: channels per attention head.
        window_size: per stage (or one value for all) None for global attention, else (h, w) windows.
        position_embedding_size: per stage P of the relative bias table (``[heads, 2P-1, 2P-1]``).
        relative_position_embedding: False gives the authors' ``*_no_pe`` models.
        pool_size: kernel of the strided shortcut average pool (2 for classification, 3 downstream).
        global_attention_at_end_of_moat_stage: make the last block of each MOAT stage global.
        bn_eps, bn_momentum: BatchNorm epsilon (the authors' 1e-3) and running-statistics momentum
            (PyTorch's 0.1 by default; the authors trained with Keras 0.99, i.e. ``bn_momentum=0.01``).
    """

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        stem_size: Sequence[int] = (64, 64),
        block_type: Sequence[str] = ("mbconv", "mbconv", "moat", "moat"),
        num_blocks: Sequence[int] = (2, 3, 7, 2),
        hidden_size: Sequence[int] = (96, 192, 384, 768),
        stage_stride: Union[int, Sequence[int]] = 2,
        expansion_rate: Union[int, Sequence[int]] = 4,
        se_ratio: Union[Optional[float], Sequence[Optional[float]]] = 0.25,
        head_size: Union[int, Sequence[int]] = 32,
        window_size: Any = None,
        position_embedding_size: Any = (None, None, 14, 7),
        relative_position_embedding: bool = True,
        ln_eps: float = 1e-5,
        bn_eps: float = _BN_EPS,
        bn_momentum: float = _BN_MOMENTUM,
        pool_size: Union[int, Sequence[int]] = 2,
        global_attention_at_end_of_moat_stage: bool = False,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        n = len(block_type)
        if len(num_blocks) != n or len(hidden_size) != n:
            raise ValueError("block_type, num_blocks and hidden_size need one value per stage (same lengths)")
        for t in block_type:
            if t not in BLOCK_TYPES:
                raise ValueError(f"unsupported block_type {t!r} (one of {BLOCK_TYPES})")
        if not stem_size:
            raise ValueError("stem_size needs at least one conv")
        stage_stride = _per_stage(stage_stride, n, "stage_stride")
        expansion_rate = _per_stage(expansion_rate, n, "expansion_rate")
        se_ratio = _per_stage(se_ratio, n, "se_ratio")
        head_size = _per_stage(head_size, n, "head_size")
        pool_size = _per_stage(pool_size, n, "pool_size")
        pos_size = _per_stage(position_embedding_size, n, "position_embedding_size")
        if window_size is None or _is_window(window_size):
            window_size = (window_size,) * n
        windows = tuple(_window(w) for w in _per_stage(tuple(window_size), n, "window_size"))

        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.stem = Stem(in_chans, stem_size, bn_eps, bn_momentum)
        self.feature_info = [dict(num_chs=stem_size[-1], reduction=2, module="stem")]
        total = sum(num_blocks)
        block_idx, prev, reduction = 0, stem_size[-1], 2
        stages = []
        for s in range(n):
            blocks = []
            for b in range(num_blocks[s]):
                stride = stage_stride[s] if b == 0 else 1
                dp = drop_path_rate * block_idx / total  # the authors' linear rule (over all blocks)
                if block_type[s] == "mbconv":
                    blocks.append(MBConvBlock(prev, hidden_size[s], stride, expansion_rate[s], se_ratio[s],
                                              pool_size[s], drop_path=dp, bn_eps=bn_eps,
                                              bn_momentum=bn_momentum))
                else:
                    window = windows[s]
                    if global_attention_at_end_of_moat_stage and b == num_blocks[s] - 1:
                        window = None
                    rel = None
                    if relative_position_embedding:
                        if pos_size[s] is None:
                            raise ValueError(f"stage {s} is a MOAT stage with relative position embedding: it "
                                             "needs a position_embedding_size")
                        rel = to_2tuple(pos_size[s])
                    blocks.append(MOATBlock(prev, hidden_size[s], stride, expansion_rate[s], pool_size[s],
                                            head_size=head_size[s], window_size=window, rel_pos_size=rel,
                                            ln_eps=ln_eps, drop_path=dp, bn_eps=bn_eps,
                                            bn_momentum=bn_momentum))
                prev = hidden_size[s]
                block_idx += 1
            reduction *= stage_stride[s]
            stages.append(MoatStage(blocks))
            self.feature_info.append(dict(num_chs=prev, reduction=reduction, module=f"stages.{s}"))
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = prev
        self.head = NormMlpClassifierHead(prev, num_classes, pool_type=global_pool, drop_rate=drop_rate,
                                          norm_layer=partial(LayerNorm2d, eps=ln_eps))
        self._init_weights(init_std)

    def _init_weights(self, std: float) -> None:
        # the authors' initialisers: every kernel (incl. depthwise and the bias table) N(0, 0.02), biases 0
        if self.head.norm.weight.is_meta:
            return  # meta tensors hold no values (and torch's meta normal_ is slow)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight, std=std)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, RelPosAttention) and m.relative_position_embedding is not None:
                nn.init.normal_(m.relative_position_embedding, std=std)

    # --- timm interface -------------------------------------------------------------------------
    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return {n for n, _ in self.named_parameters() if n.endswith("relative_position_embedding")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(stem=r"^stem", blocks=r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.blocks\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable
        for s in self.stages:
            s.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = global_pool
        self.head.reset(num_classes, global_pool)

    def feature_sizes(self, height: int, width: int) -> List[Tuple[int, int]]:
        """Spatial size after the stem and after each stage ('same' padding: ceil division)."""
        sizes = [(math.ceil(height / 2), math.ceil(width / 2))]
        for info_prev, info in zip(self.feature_info[:-1], self.feature_info[1:]):
            s = info["reduction"] // info_prev["reduction"]
            h, w = sizes[-1]
            sizes.append((math.ceil(h / s), math.ceil(w / s)))
        return sizes

    @property
    def input_rules(self) -> InputRules:
        """Its total stride, and window attention: each windowed stage's map ('same' padding, so
        ceil(H / stride)) must split into whole windows."""
        windows = []
        for s, stage in enumerate(self.stages):
            for blk in stage.blocks:
                win = getattr(blk, "window_size", None)
                if win is not None:
                    windows.append((int(self.feature_info[s + 1]["reduction"]), int(win[0]), int(win[1])))
        return default_input_rules(self).replace(windows=tuple(dict.fromkeys(windows)))

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stem output (index 0, the authors' endpoint 'stage1', before activation) and stage outputs
        (1..4, 'stage2'..'stage5'). ``norm`` is accepted for timm compatibility: the final LayerNorm
        acts on pooled features, so intermediates are returned un-normalised."""
        if output_fmt != "NCHW":
            raise ValueError("MOAT intermediates are NCHW only")
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        intermediates = []
        x = self.stem(x)
        if 0 in take_indices:
            intermediates.append(x)
        stages = self.stages[:max_index] if stop_early else self.stages
        for i, stage in enumerate(stages, start=1):
            x = stage(x)
            if i in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: Union[int, List[int]] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self.stages) + 1, indices)
        self.stages = self.stages[:max_index]
        if max_index < len(self.feature_info) - 1 or prune_norm or prune_head:
            # the head's LayerNorm has the last stage's width: drop it with the pruned stages
            self.head.reset(0, "", reset_other=True)
            self.num_classes, self.global_pool = 0, ""
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _is_window(value: Any) -> bool:
    """True for one window given for every stage (an int or [h, w] of ints)."""
    return isinstance(value, int) or (
        isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value))


# --- the authors' weights ----------------------------------------------------------------------

_EMA = "/ExponentialMovingAverage"
_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_LN = {"gamma": "weight", "beta": "bias"}
_BLOCK_CONV = {"shortcut_conv", "expand_conv", "shrink_conv"}
_BLOCK_NORM = {"pre_norm", "expand_norm", "depthwise_norm"}


def _is_tf_state_dict(state_dict: dict) -> bool:
    return any(k.endswith(":0") or k.startswith("moat/") or re.match(r"(conv|norm)_\d+/", k) for k in state_dict)


def _canonical_tf_name(key: str) -> str:
    """Keras ('conv_0/kernel:0', 'moat/block_00_00/...:0') or TF1 ('moat/stem/conv_0/kernel',
    'moat/block_00_00/...') name -> 'stem/conv_0/kernel' or 'block_00_00/...'."""
    key = key[:-2] if key.endswith(":0") else key
    key = key[len("moat/"):] if key.startswith("moat/") else key
    if re.match(r"(conv|norm)_\d+/", key):  # TF2 Keras: the stem's Sequential scope is lost
        key = "stem/" + key
    return key


def _conv_kernel(v: torch.Tensor) -> torch.Tensor:
    return v.permute(3, 2, 0, 1)  # HWIO -> OIHW


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module, prefer_ema: bool = False
                         ) -> dict[str, torch.Tensor]:
    """The authors' TensorFlow variables -> archzoo's state dict (archzoo keys pass unchanged).

    Accepts Keras variable names (``moat/block_02_00/attention/q/weight:0``, stem vars without scope
    ``conv_0/kernel:0``) and the names of the released TF1 checkpoints (no ``:0``, stem under
    ``moat/stem/``); EMA copies (``.../ExponentialMovingAverage``) are used when ``prefer_ema`` or when
    they are the only copy (the authors' loader reads the raw variables). Layouts: conv kernels HWIO ->
    OIHW, depthwise ``[kh, kw, C, 1]`` -> ``[C, 1, kh, kw]``, attention ``TrailDense`` weights
    ``[C, heads, head_size]`` (q, k, v fused into ``qkv``) and ``[heads, head_size, C]`` (o) -> Linear.
    BatchNorm ``num_batches_tracked`` (absent in TF) is set to 0; non-variable entries (``__*``,
    optimizer slots, ``global_step``) are dropped.
    """
    if not _is_tf_state_dict(state_dict):
        return {k: v for k, v in state_dict.items() if not k.startswith("__")}
    own = model.state_dict()
    raw: dict[str, torch.Tensor] = {}
    ema: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        if k.startswith("__") or not isinstance(v, torch.Tensor):
            continue
        is_ema = _EMA in k
        name = _canonical_tf_name(k.replace(_EMA, ""))
        (ema if is_ema else raw)[name] = v
    tf = {**raw, **ema} if prefer_ema else {**ema, **raw}

    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, dict[str, torch.Tensor]]] = {}
    for name, v in tf.items():
        parts = name.split("/")
        if parts[0] == "stem" and len(parts) == 3:
            layer, var = parts[1], parts[2]
            if layer.startswith("conv_"):
                out[f"stem.{layer}." + ("weight" if var == "kernel" else "bias")] = _conv_kernel(v) if var == "kernel" else v
            elif layer.startswith("norm_") and var in _BN:
                out[f"stem.{layer}.{_BN[var]}"] = v
            continue
        m = re.match(r"block_(\d+)_(\d+)$", parts[0])
        if m:
            prefix = f"stages.{int(m.group(1))}.blocks.{int(m.group(2))}"
            layer, var = parts[1], parts[-1]
            if layer in _BLOCK_CONV and len(parts) == 3:
                out[f"{prefix}.{layer}." + ("weight" if var == "kernel" else "bias")] = _conv_kernel(v) if var == "kernel" else v
            elif layer in _BLOCK_NORM and var in _BN:
                out[f"{prefix}.{layer}.{_BN[var]}"] = v
            elif layer == "depthwise_conv" and var == "depthwise_kernel":
                out[f"{prefix}.depthwise_conv.weight"] = v.permute(2, 3, 0, 1)
            elif layer == "se" and len(parts) == 4:
                fc = {"reduce_conv2d": "fc1", "expand_conv2d": "fc2"}[parts[2]]
                out[f"{prefix}.se.{fc}." + ("weight" if var == "kernel" else "bias")] = _conv_kernel(v) if var == "kernel" else v
            elif layer == "attention_norm" and var in _LN:
                out[f"{prefix}.attention_norm.{_LN[var]}"] = v
            elif layer == "attention" and var == "relative_position_embedding":
                out[f"{prefix}.attention.relative_position_embedding"] = v
            elif layer == "attention" and len(parts) == 4 and parts[2] in ("q", "k", "v"):
                qkv.setdefault(prefix, {}).setdefault(var, {})[parts[2]] = v
            elif layer == "attention" and len(parts) == 4 and parts[2] == "o":
                if var == "weight":  # [heads, head_size, C] -> Linear [C, heads * head_size]
                    out[f"{prefix}.attention.proj.weight"] = v.reshape(-1, v.shape[-1]).t()
                else:
                    out[f"{prefix}.attention.proj.bias"] = v
            continue
        if parts[0] == "final_layer_norm" and parts[-1] in _LN:
            out[f"head.norm.{_LN[parts[-1]]}"] = v
        elif parts[0] == "logits_head":
            if parts[-1] == "kernel":
                w = _conv_kernel(v)  # [classes, C, 1, 1]
                target = own.get("head.fc.weight")
                out["head.fc.weight"] = w if target is not None and target.dim() == 4 else w.flatten(1)
            else:
                out["head.fc.bias"] = v
    for prefix, byvar in qkv.items():
        if "weight" in byvar:  # each [C, heads, head_size] -> Linear rows (heads * head_size) per q, k, v
            out[f"{prefix}.attention.qkv.weight"] = torch.cat(
                [byvar["weight"][n].reshape(byvar["weight"][n].shape[0], -1).t() for n in ("q", "k", "v")])
        if "bias" in byvar:
            out[f"{prefix}.attention.qkv.bias"] = torch.cat([byvar["bias"][n].reshape(-1) for n in ("q", "k", "v")])
    for k, v in own.items():
        if k.endswith("num_batches_tracked") and k not in out:
            out[k] = torch.zeros((), dtype=torch.long, device=v.device)
    return out


def read_tf_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """Read every variable of a TensorFlow checkpoint (e.g. the authors' released ``model.ckpt``) into
    torch tensors, under the checkpoint's names; pass the result to :func:`checkpoint_filter_fn`.
    Needs TensorFlow (an optional extra, never a dependency of archzoo)."""
    try:
        import tensorflow as tf  # noqa: F401
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading a TensorFlow checkpoint needs tensorflow (pip install tensorflow); "
                          "archzoo itself does not depend on it") from e
    reader = tf.train.load_checkpoint(path)
    out = {}
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if getattr(value, "dtype", None) is not None and value.dtype.kind == "f":
            out[name] = torch.from_numpy(value.copy())
    return out


# --- reference vectors -------------------------------------------------------------------------

def moat_from_authors_config(config: dict) -> MOAT:
    """A MOAT from the authors' ``MOAT(**config)`` keyword arguments (deeplab2's names)."""
    n = len(config["block_type"])
    windows = config.get("window_size") or [None] * n
    return MOAT(
        num_classes=config.get("build_classification_head_with_class_num") or 0,
        stem_size=tuple(config["stem_size"]),
        block_type=tuple(config["block_type"]),
        num_blocks=tuple(config["num_blocks"]),
        hidden_size=tuple(config["hidden_size"]),
        stage_stride=tuple(config.get("stage_stride", [2, 2, 2, 2])),
        expansion_rate=config.get("expansion_rate", 4),
        se_ratio=config.get("se_ratio", 0.25),
        head_size=config.get("head_size", 32),
        window_size=tuple(windows),
        position_embedding_size=tuple(config.get("position_embedding_size", [None, None, 14, 7])),
        relative_position_embedding=config.get("relative_position_embedding_type", "2d_multi_head") is not None,
        ln_eps=config.get("ln_epsilon", 1e-5),
        pool_size=config.get("pool_size", 2),
        global_attention_at_end_of_moat_stage=bool(config.get("global_attention_at_end_of_moat_stage", False)),
    )


@register_reference("moat")
def _reference_moat(config: dict, meta: dict) -> nn.Module:
    return moat_from_authors_config(config)


@register_reference("moat_nope")
def _reference_moat_nope(config: dict, meta: dict) -> nn.Module:
    return moat_from_authors_config(config)


@register_reference("moat_window")
def _reference_moat_window(config: dict, meta: dict) -> nn.Module:
    return moat_from_authors_config(config)


# --- registered variants -----------------------------------------------------------------------

_CKPT = "https://storage.googleapis.com/gresearch/tf-deeplab/checkpoint/"


def _cfg(origin: str = "", size: int = 224, option: int = 1, **kwargs: Any) -> dict[str, Any]:
    # input normalisation: the authors' 'option 1' is ImageNet mean/std, 'option 2' is (x - 127.5) / 127.5
    mean, std = (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD) if option == 1 else (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD)
    return {
        "url": "", "num_classes": 1000, "input_size": (3, size, size), "pool_size": (size // 32, size // 32),
        "mean": mean, "std": std,  # crop / interpolation: not stated by the authors (timm's defaults)
        "first_conv": "stem.conv_0", "classifier": "head.fc", "license": "apache-2.0",
        "paper_ids": "arXiv:2210.01820", "paper_name": "MOAT",
        "origin_url": _CKPT + origin if origin else "",
        "notes": ("TF1 checkpoint (tar.gz) of the authors: read it with archzoo.models.moat.read_tf_checkpoint "
                  "(needs tensorflow), then load through checkpoint_filter_fn",) if origin else (),
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "moat_0.in1k": _cfg("moat0_imagenet_1k_224_w_position_embedding.tar.gz"),
    "moat_1.in1k": _cfg("moat1_imagenet_1k_224_w_position_embedding.tar.gz"),
    "moat_2.in22k_ft_in1k_384": _cfg("moat2_imagenet_22k_and_1k_384_w_position_embedding.tar.gz", 384, 2),
    "moat_3.in22k_ft_in1k_512": _cfg("moat3_imagenet_22k_and_1k_512_w_position_embedding.tar.gz", 512, 2),
    "moat_4.in22k_ft_in1k_512": _cfg("moat4_imagenet_22k_and_1k_512_w_position_embedding.tar.gz", 512, 2),
    "tiny_moat_0.in1k_256": _cfg("tiny_moat0_imagenet_1k_256_w_position_embedding.tar.gz", 256),
    "tiny_moat_1.in1k_256": _cfg("tiny_moat1_imagenet_1k_256_w_position_embedding.tar.gz", 256),
    "tiny_moat_2.in1k_256": _cfg("tiny_moat2_imagenet_1k_256_w_position_embedding.tar.gz", 256),
    "tiny_moat_3.in1k_256": _cfg("tiny_moat3_imagenet_1k_256_w_position_embedding.tar.gz", 256),
    "moat_0_no_pe.in1k": _cfg("moat0_imagenet_1k_224_wo_position_embedding.tar.gz"),
    "moat_1_no_pe.in1k": _cfg("moat1_imagenet_1k_224_wo_position_embedding.tar.gz"),
    "moat_2_no_pe.in22k_ft_in1k_384": _cfg("moat2_imagenet_22k_and_1k_384_wo_position_embedding.tar.gz", 384, 2),
    "moat_3_no_pe.in22k_ft_in1k_512": _cfg("moat3_imagenet_22k_and_1k_512_wo_position_embedding.tar.gz", 512, 2),
    "moat_4_no_pe.in22k_ft_in1k_512": _cfg("moat4_imagenet_22k_and_1k_512_wo_position_embedding.tar.gz", 512, 2),
    "tiny_moat_0_no_pe.in1k_256": _cfg("tiny_moat0_imagenet_1k_256_wo_position_embedding.tar.gz", 256),
    "tiny_moat_1_no_pe.in1k_256": _cfg("tiny_moat1_imagenet_1k_256_wo_position_embedding.tar.gz", 256),
    "tiny_moat_2_no_pe.in1k_256": _cfg("tiny_moat2_imagenet_1k_256_wo_position_embedding.tar.gz", 256),
    "tiny_moat_3_no_pe.in1k_256": _cfg("tiny_moat3_imagenet_1k_256_wo_position_embedding.tar.gz", 256),
})

# the authors' configurations (model/pixel_encoder/moat.py); survival_prob there = 1 - drop_path_rate
# (moat_0 0.8, moat_1 0.7, moat_2 0.7, moat_3 0.4, moat_4 0.3, tiny 0-2 1.0, tiny_3 0.9) is a training
# setting: archzoo's models default to drop_path_rate=0 like timm's
_CONFIGS = {
    "moat_0": dict(stem_size=(64, 64), num_blocks=(2, 3, 7, 2), hidden_size=(96, 192, 384, 768)),
    "moat_1": dict(stem_size=(64, 64), num_blocks=(2, 6, 14, 2), hidden_size=(96, 192, 384, 768)),
    "moat_2": dict(stem_size=(128, 128), num_blocks=(2, 6, 14, 2), hidden_size=(128, 256, 512, 1024)),
    "moat_3": dict(stem_size=(160, 160), num_blocks=(2, 12, 28, 2), hidden_size=(160, 320, 640, 1280)),
    "moat_4": dict(stem_size=(256, 256), num_blocks=(2, 12, 28, 2), hidden_size=(256, 512, 1024, 2048)),
    "tiny_moat_0": dict(stem_size=(32, 32), num_blocks=(2, 3, 7, 2), hidden_size=(32, 64, 128, 256)),
    "tiny_moat_1": dict(stem_size=(40, 40), num_blocks=(2, 3, 7, 2), hidden_size=(40, 80, 160, 320)),
    "tiny_moat_2": dict(stem_size=(56, 56), num_blocks=(2, 3, 7, 2), hidden_size=(56, 112, 224, 448)),
    "tiny_moat_3": dict(stem_size=(80, 80), num_blocks=(2, 3, 7, 2), hidden_size=(80, 160, 320, 640)),
}


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> MOAT:
    base = variant[: -len("_no_pe")] if variant.endswith("_no_pe") else variant
    cfg = dict(_CONFIGS[base], **({"relative_position_embedding": False} if variant.endswith("_no_pe") else {}))
    n_levels = len(kwargs.get("block_type", ("mbconv", "mbconv", "moat", "moat"))) + 1  # stem + stages
    out_indices = kwargs.pop("out_indices", tuple(range(n_levels)))
    return build_model_with_cfg(
        MOAT, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **dict(cfg, **kwargs),
    )


@register_model
def moat_0(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_0", pretrained, **kwargs)


@register_model
def moat_1(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_1", pretrained, **kwargs)


@register_model
def moat_2(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_2", pretrained, **kwargs)


@register_model
def moat_3(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_3", pretrained, **kwargs)


@register_model
def moat_4(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_4", pretrained, **kwargs)


@register_model
def tiny_moat_0(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_0", pretrained, **kwargs)


@register_model
def tiny_moat_1(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_1", pretrained, **kwargs)


@register_model
def tiny_moat_2(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_2", pretrained, **kwargs)


@register_model
def tiny_moat_3(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_3", pretrained, **kwargs)


@register_model
def moat_0_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_0_no_pe", pretrained, **kwargs)


@register_model
def moat_1_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_1_no_pe", pretrained, **kwargs)


@register_model
def moat_2_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_2_no_pe", pretrained, **kwargs)


@register_model
def moat_3_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_3_no_pe", pretrained, **kwargs)


@register_model
def moat_4_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("moat_4_no_pe", pretrained, **kwargs)


@register_model
def tiny_moat_0_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_0_no_pe", pretrained, **kwargs)


@register_model
def tiny_moat_1_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_1_no_pe", pretrained, **kwargs)


@register_model
def tiny_moat_2_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_2_no_pe", pretrained, **kwargs)


@register_model
def tiny_moat_3_no_pe(pretrained: bool = False, **kwargs: Any) -> MOAT:
    return _create("tiny_moat_3_no_pe", pretrained, **kwargs)
