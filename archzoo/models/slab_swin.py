"""SLAB-Swin: Swin Transformer with simplified linear attention and PRepBN (Guo et al., "SLAB: Efficient
Transformers with Simplified Linear Attention and Progressive Re-parameterized Batch Normalization",
ICML 2024, arXiv 2405.11582).

Authors' code: https://github.com/xinghaochen/SLAB (``classification/models/slab_swin.py``, configs
``cfgs/slab_swin_{t,s,b}.yaml``); this module follows it at commit f58db00 and loads its checkpoints
through :func:`checkpoint_filter_fn` (module names are the authors').

Each stage has a string of attention types (``attn_type``, one letter per stage: ``L`` simplified
linear attention, ``S`` Swin's softmax window attention with relative position bias, ``M<n>`` after
the four letters: first n blocks L, the rest S). Window rules of the authors' ``BasicLayer``:
- L blocks use ``window_size`` (the released models: 56, i.e. the whole stage), clipped to the stage
  resolution (then the block attends globally and does not shift);
- S blocks use window 7 (12 if ``window_size`` > 56);
- odd blocks shift by half their window, unless the window covers the stage.
L blocks ignore the shifted-window mask (the authors' SLA takes no mask); every norm is a PRepBN
(step 60000), including the patch embedding, patch merging and final norms.

Deploy: :meth:`SlabSwinTransformer.reparameterize` (also reached by ``timm.models.reparameterize_model``
and ``archzoo.deploy``) folds every eval-mode PRepBN into the adjacent Linear/conv.
"""
from __future__ import annotations

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
from timm.models.swin_transformer import get_relative_position_index, window_partition, window_reverse

from archzoo.checkpoint import unwrap_state_dict
from archzoo.models._slab_layers import (
    PRepBN, SlabHead, SlabModelMixin, finalize_cfg, fold_into_conv_output, fold_into_linear, heads_merge, linear_attention,
    norm_affine, prepbn,
)
from archzoo.reference import register_reference

__all__ = ["SlabSwinTransformer", "checkpoint_filter_fn", "swin_block_attn_types"]


def swin_block_attn_types(attn_type: str, depths: Sequence[int]) -> list[list[str]]:
    """Per stage, per block 'L' or 'S' from the authors' attention-type string."""
    n = len(depths)
    if len(attn_type) < n:
        raise ValueError(f"attn_type {attn_type!r} needs one letter per stage ({n})")
    out = []
    for i, d in enumerate(depths):
        t = attn_type[i]
        if t == "M":
            n_lin = int(attn_type[n:])
            out.append(["L" if j < n_lin else "S" for j in range(d)])
        elif t in ("L", "S"):
            out.append([t] * d)
        else:
            raise ValueError(f"attention type {t!r} in {attn_type!r} is not L, S or M")
    return out


class WindowAttention(nn.Module):
    """Swin's (shifted-)window softmax attention with relative position bias (the S blocks)."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (dim // num_heads) ** -0.5
        self.fused_attn = use_fused_attn()
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        # derived from the window size: not saved (the filter drops the authors' copy)
        self.register_buffer("relative_position_index", get_relative_position_index(window_size, window_size),
                             persistent=False)
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B_, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B_, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        bias = bias.permute(2, 0, 1).unsqueeze(0)  # 1, nH, N, N
        if mask is not None:
            nW = mask.shape[0]
            bias = (bias + mask.unsqueeze(1)).unsqueeze(0).expand(B_ // nW, -1, -1, -1, -1).reshape(B_, self.num_heads, N, N)
        if self.fused_attn:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype),
                                               dropout_p=self.attn_drop.p if self.training else 0.0, scale=self.scale)
        else:
            attn = (q * self.scale) @ k.transpose(-2, -1) + bias
            x = self.attn_drop(attn.softmax(dim=-1)) @ v
        x = x.transpose(1, 2).reshape(B_, N, C)
        return self.proj_drop(self.proj(x))


class SwinLinearAttention(nn.Module):
    """Simplified linear attention inside a window (the L blocks): one positional encoding per window
    token added to k, ReLU kernel, and a depthwise conv of v (shared by the heads) added back."""

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True,
                 proj_drop: float = 0.0, kernel_size: int = 5) -> None:
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.dwc = nn.Conv2d(head_dim, head_dim, kernel_size, padding=kernel_size // 2, groups=head_dim)
        self.positional_encoding = nn.Parameter(torch.zeros(1, window_size * window_size, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        B_, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B_, N, 3, C).unbind(2)
        x, v = linear_attention(q, k + self.positional_encoding, v, self.num_heads, upcast=True)
        ws = self.window_size
        fmap = v.reshape(-1, ws, ws, v.shape[-1]).permute(0, 3, 1, 2)
        x = x + self.dwc(fmap).flatten(2).transpose(1, 2)
        return self.proj_drop(self.proj(heads_merge(x, self.num_heads)))


def _shift_mask(H: int, W: int, window: int, shift: int) -> torch.Tensor:
    """(nW, ws*ws, ws*ws) additive mask (0 / -100) keeping shifted windows from mixing regions."""
    img_mask = torch.zeros((1, H, W, 1))
    cnt = 0
    for h in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for w in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            img_mask[:, h, w, :] = cnt
            cnt += 1
    mw = window_partition(img_mask, (window, window)).view(-1, window * window)
    diff = mw.unsqueeze(1) - mw.unsqueeze(2)
    return diff.masked_fill(diff != 0, -100.0).masked_fill(diff == 0, 0.0)


class SlabSwinBlock(nn.Module):
    """Swin block with PRepBN norms and an L (linear) or S (softmax) window attention."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int, window_size: int = 7,
                 shift_size: int = 0, mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale: float | None = None,
                 drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0, norm_layer=None,
                 kernel_size: int = 5, attn_type: str = "L") -> None:
        super().__init__()
        self.input_resolution = input_resolution
        if min(input_resolution) <= window_size:  # the window covers the stage: no partition, no shift
            shift_size, window_size = 0, min(input_resolution)
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift {shift_size} must lie in [0, window {window_size})")
        self.window_size, self.shift_size, self.attn_type = window_size, shift_size, attn_type
        self.norm1 = norm_layer(dim)
        if attn_type == "L":
            self.attn = SwinLinearAttention(dim, window_size, num_heads, qkv_bias, drop, kernel_size)
        elif attn_type == "S":
            self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        else:
            raise ValueError(f"attn_type must be 'L' or 'S', got {attn_type!r}")
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop)
        # the linear attention ignores the mask (as the authors'), so only S blocks keep one
        mask = _shift_mask(*input_resolution, window_size, shift_size) if shift_size > 0 and attn_type == "S" else None
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = self.input_resolution
        B, L, C = x.shape
        shortcut = x
        x = self.norm1(x).view(B, H, W, C)
        s, ws = self.shift_size, self.window_size
        if s > 0:
            x = torch.roll(x, shifts=(-s, -s), dims=(1, 2))
        win = window_partition(x, (ws, ws)).view(-1, ws * ws, C)
        win = self.attn(win, mask=self.attn_mask).view(-1, ws, ws, C)
        x = window_reverse(win, (ws, ws), H, W)
        if s > 0:
            x = torch.roll(x, shifts=(s, s), dims=(1, 2))
        x = shortcut + self.drop_path(x.reshape(B, L, C))
        return x + self.drop_path(self.mlp(self.norm2(x)))

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold norm1 into the attention's qkv and norm2 into the MLP's fc1 (eval statistics)."""
        ab = norm_affine(self.norm1)
        if ab is not None:
            self.attn.qkv = fold_into_linear(self.attn.qkv, *ab)
            self.norm1 = nn.Identity()
        ab = norm_affine(self.norm2)
        if ab is not None:
            self.mlp.fc1 = fold_into_linear(self.mlp.fc1, *ab)
            self.norm2 = nn.Identity()


class PatchMerging(nn.Module):
    """2x2 neighbour concatenation, PRepBN over the 4C channels, bias-free Linear 4C -> 2C."""

    def __init__(self, input_resolution: tuple[int, int], dim: int, norm_layer=None) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.norm = norm_layer(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = self.input_resolution
        B, L, C = x.shape
        x = x.view(B, H, W, C)
        # the authors' channel order: (0,0), (1,0), (0,1), (1,1)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(B, -1, 4 * C)))

    @torch.no_grad()
    def reparameterize(self) -> None:
        ab = norm_affine(self.norm)
        if ab is not None:
            self.reduction = fold_into_linear(self.reduction, *ab)  # gains a bias
            self.norm = nn.Identity()


class PatchEmbed(nn.Module):
    """Non-overlapping patch conv, then PRepBN over the tokens."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, norm_layer=None) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))

    @torch.no_grad()
    def reparameterize(self) -> None:
        ab = norm_affine(self.norm)
        if ab is not None:
            self.proj = fold_into_conv_output(self.proj, *ab)
            self.norm = nn.Identity()


class BasicLayer(nn.Module):
    """One stage: blocks, then (except in the last stage) patch merging, as in the authors' code."""

    def __init__(self, dim: int, input_resolution: tuple[int, int], num_heads: int, attn_types: list[str],
                 window_size: int, mlp_ratio: float, qkv_bias: bool, qk_scale: float | None, drop: float,
                 attn_drop: float, drop_path: list[float], norm_layer, downsample: bool, kernel_size: int) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        # S blocks keep Swin's 7x7 windows (12x12 for large window settings)
        windows = [window_size if t == "L" else (7 if window_size <= 56 else 12) for t in attn_types]
        self.blocks = nn.ModuleList([
            SlabSwinBlock(dim, input_resolution, num_heads, windows[j], 0 if j % 2 == 0 else windows[j] // 2,
                          mlp_ratio, qkv_bias, qk_scale, drop, attn_drop, drop_path[j], norm_layer, kernel_size,
                          attn_types[j])
            for j in range(len(attn_types))
        ])
        self.downsample = PatchMerging(input_resolution, dim, norm_layer) if downsample else None
        self.grad_checkpointing = False

    def forward_blocks(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x)
            else:
                x = blk(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_blocks(x)
        return self.downsample(x) if self.downsample is not None else x


class SlabSwinTransformer(SlabModelMixin, nn.Module):
    """SLAB-Swin with timm's interface (authors' ``SlabSwinTransformer``; fixed input size).

    ``prepbn_step`` / ``prepbn_warm``: the PRepBN schedule in training forward calls (authors: 60000, 0).
    ``focusing_factor`` is accepted for the authors' configs and unused, as in their SLA.
    """

    def __init__(
            self,
            img_size: int = 224,
            patch_size: int = 4,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str = "avg",
            embed_dim: int = 96,
            depths: Sequence[int] = (2, 2, 6, 2),
            num_heads: Sequence[int] = (3, 6, 12, 24),
            window_size: int = 7,
            mlp_ratio: float = 4.0,
            qkv_bias: bool = True,
            qk_scale: float | None = None,
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.1,
            ape: bool = False,
            patch_norm: bool = True,
            kernel_size: int = 5,
            attn_type: str = "LLLL",
            prepbn_step: int = 60000,
            prepbn_warm: int = 0,
            focusing_factor: int = 3,
    ) -> None:
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        n = len(depths)
        if len(num_heads) != n:
            raise ValueError("depths and num_heads need one value per stage")
        self.img_size = to_2tuple(img_size)
        grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        if grid[0] % 2 ** (n - 1) or grid[1] % 2 ** (n - 1):
            raise ValueError(f"img_size {img_size} / patch {patch_size} = {grid} must halve {n - 1} times")
        norm_layer = prepbn(prepbn_step, ln_eps=1e-5, warm=prepbn_warm)
        self.num_classes, self.global_pool, self.in_chans = num_classes, global_pool, in_chans
        self.num_features = self.head_hidden_size = int(embed_dim * 2 ** (n - 1))
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, norm_layer if patch_norm else None)
        self.absolute_pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1], embed_dim)) if ape else None
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        types = swin_block_attn_types(attn_type, depths)
        self.layers, self.feature_info = nn.ModuleList(), []
        for i in range(n):
            res = (grid[0] // 2 ** i, grid[1] // 2 ** i)
            self.layers.append(BasicLayer(
                int(embed_dim * 2 ** i), res, num_heads[i], types[i], window_size, mlp_ratio, qkv_bias, qk_scale,
                drop_rate, attn_drop_rate, dpr[sum(depths[:i]):sum(depths[:i + 1])], norm_layer, i < n - 1,
                kernel_size))
            self.feature_info.append(dict(num_chs=int(embed_dim * 2 ** i), reduction=patch_size * 2 ** i,
                                          module=f"layers.{i}"))
        self.head = SlabHead(norm_layer(self.num_features), self.num_features, num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        """The authors' initialisation: trunc-normal(0.02) Linear weights, zero biases, LayerNorm 1/0,
        trunc-normal relative position bias tables, zero SLA positional encodings."""
        if next(self.parameters()).is_meta:
            return  # nothing to fill on the meta device
        if self.absolute_pos_embed is not None:
            trunc_normal_(self.absolute_pos_embed, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, WindowAttention):
                trunc_normal_(m.relative_position_bias_table, std=0.02)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        names = {n for n, _ in self.named_parameters() if n.endswith("relative_position_bias_table")}
        return names | ({"absolute_pos_embed"} if self.absolute_pos_embed is not None else set())

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^absolute_pos_embed|patch_embed",
                    blocks=r"^layers\.(\d+)" if coarse else [(r"^layers\.(\d+).downsample", (0,)),
                                                            (r"^layers\.(\d+)\.\w+\.(\d+)", None),
                                                            (r"^head\.norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Note: recomputation runs each block's PRepBNs again, advancing their schedule twice per
        step (the authors' ``use_checkpoint`` does the same)."""
        for layer in self.layers:
            layer.grad_checkpointing = enable

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = x + self.absolute_pos_embed
        return self.pos_drop(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens of the last stage, (B, H*W, C), before the final norm (it sits in the head)."""
        x = self._embed(x)
        for layer in self.layers:
            x = layer(x)
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
        """Stage outputs (before patch merging) as NCHW maps; ``norm`` applies the final norm to the last."""
        if output_fmt != "NCHW":
            raise ValueError("SLAB-Swin intermediates are NCHW maps")
        take, max_index = feature_take_indices(len(self.layers), indices)
        last = len(self.layers) - 1
        layers = self.layers[: max_index + 1] if stop_early or intermediates_only else self.layers
        x = self._embed(x)
        out = []
        for i, layer in enumerate(layers):
            x = layer.forward_blocks(x)
            if i in take:
                t = self.head.norm(x) if norm and i == last else x
                H, W = layer.input_resolution
                out.append(t.transpose(1, 2).reshape(t.shape[0], -1, H, W))
            if layer.downsample is not None:
                x = layer.downsample(x)
        if intermediates_only:
            return out
        return x, out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(len(self.layers), indices)
        self.layers = self.layers[: max_index + 1]
        if self.layers[-1].downsample is not None:
            self.layers[-1].downsample = None
        if prune_norm or max_index < len(self.feature_info) - 1:
            self.head.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Authors' keys -> archzoo's: the final ``norm``/``head`` move into ``head.norm``/``head.fc``;
    derived buffers (``attn_mask``, ``relative_position_index``) are dropped. archzoo keys pass."""
    out = {}
    for k, v in unwrap_state_dict(state_dict, wrapper_keys=("model",)).items():
        if k.endswith("attn_mask") or k.endswith("relative_position_index"):
            continue
        if k.startswith("norm."):
            k = "head.norm." + k[len("norm."):]
        elif k in ("head.weight", "head.bias"):
            k = "head.fc." + k.split(".")[-1]
        out[k] = v
    return out


@register_reference("slab_swin")
def _reference_slab_swin(config: dict, meta: dict) -> nn.Module:
    return SlabSwinTransformer(**config)


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> SlabSwinTransformer:
    n = len(kwargs.get("depths", (2, 2, 6, 2)))
    out_indices = kwargs.pop("out_indices", tuple(range(n)))
    return finalize_cfg(build_model_with_cfg(
        SlabSwinTransformer, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs))


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    # the authors' evaluation: Swin's pipeline (bicubic, crop 0.875, ImageNet mean/std)
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.875,
        "interpolation": "bicubic", "fixed_input_size": True, "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "patch_embed.proj", "classifier": "head.fc",
        "paper_ids": "arXiv:2405.11582", "origin_url": "https://github.com/xinghaochen/SLAB", **kwargs,
    }


_REL = "https://github.com/xinghaochen/SLAB/releases/download/ckpts/"
default_cfgs = generate_default_cfgs({
    "slab_swin_t.in1k": _cfg(_REL + "slab_swin_tiny.pth"),
    "slab_swin_s.in1k": _cfg(_REL + "slab_swin_small.pth"),
    "slab_swin_b.in1k": _cfg(),
})

# cfgs/slab_swin_{t,s,b}.yaml: window 56 (global L blocks), LLSS, drop-path 0.2 / 0.3 / 0.5
_T = dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=56, attn_type="LLSS", drop_path_rate=0.2)
_S = dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=56, attn_type="LLSS", drop_path_rate=0.3)
_B = dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=56, attn_type="LLSS", drop_path_rate=0.5)


@register_model
def slab_swin_t(pretrained: bool = False, **kwargs: Any) -> SlabSwinTransformer:
    """SLAB-Swin-T (29.2 M params, 4.5 GMACs at 224)."""
    return _create("slab_swin_t", pretrained, **dict(_T, **kwargs))


@register_model
def slab_swin_s(pretrained: bool = False, **kwargs: Any) -> SlabSwinTransformer:
    """SLAB-Swin-S (50.6 M params, 8.7 GMACs at 224)."""
    return _create("slab_swin_s", pretrained, **dict(_S, **kwargs))


@register_model
def slab_swin_b(pretrained: bool = False, **kwargs: Any) -> SlabSwinTransformer:
    """SLAB-Swin-B (89.0 M params, 15.4 GMACs at 224)."""
    return _create("slab_swin_b", pretrained, **dict(_B, **kwargs))
