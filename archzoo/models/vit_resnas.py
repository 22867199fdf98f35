"""ViT-ResNAS: multi-stage Vision Transformers with residual spatial reduction (Liao, Karaman, Sze,
"Searching for Efficient Multi-Stage Vision Transformers", arXiv 2109.00642).

Authors' code: https://github.com/yilunliao/vit-search (``nets/vit_sr_supernet.py``,
``nets/supernet_blocks.py``, ``nets/patch_conv.py``; searched networks in
``scripts/vit-sr-nas/searched_net/*.sh``). This module follows it at commit 303e7c3 and loads its
checkpoints unchanged (module names are the authors').

A network is described by the authors' *network definition*, a tuple of entries (``--network-def``):

- ``(0, dim)``: 14x14 patch embedding (one strided conv); ``(4, dim)``: convolutional patch embedding
  (three 3x3 Conv-BN-ReLU, the first of stride 2, a residual around the last two, then a 7x7 stride-7
  conv), 24 middle channels; ``(5, dim, mid)``: the same with ``mid`` middle channels;
- ``(1, (dim, heads, head_dim), (dim, hidden), exists)``: a pre-norm transformer block whose attention
  width ``heads * head_dim`` is independent of ``dim``; ``exists = 0`` is a removed block (no weights);
- ``(3, in_dim, out_dim)``: residual spatial reduction. Main path: LayerNorm of all tokens, then for the
  patch tokens a 3x3 stride-2 conv on the token grid plus a new position embedding, and for the class
  (and distillation) tokens a linear layer. Residual path: 2x2 average pooling of the (un-normalised)
  patch grid and the raw class tokens, zero-padded from ``in_dim`` to ``out_dim`` channels;
- ``(2, dim, num_classes)``: the classifier.

The head classifies the class token after the final LayerNorm. Searched networks also carry a
``patch_head`` (per-token classifier used by the authors' shifted patch-token mixup during training);
:meth:`ViTResNAS.forward_patch_logits` exposes it, and the plain forward returns class logits only.

Out of scope (the searched networks are built directly): the super-network, its channel-dropping
masks (``ChannelDrop``/``MaskedLayerNorm`` with masks) and the evolutionary search.
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import Attention, ConvNormAct, DropPath, Mlp, to_2tuple, trunc_normal_
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference
from archzoo.validation import InputRules, default_input_rules

__all__ = [
    "ViTResNAS", "parse_network_def", "EmbedDef", "BlockDef", "ReductionDef", "HeadDef",
    "checkpoint_filter_fn", "NETWORK_DEFS",
]

# --------------------------------------------------------------------------------------------------
# The authors' network-definition grammar
# --------------------------------------------------------------------------------------------------
_EMBED_PATCH, _EMBED_CONV, _EMBED_CONV_FLEX = 0, 4, 5
_TRANSFORMER, _HEAD, _REDUCTION = 1, 2, 3


@dataclass(frozen=True)
class EmbedDef:
    kind: int  # 0 (one 14x14 conv), 4 (conv stem, 24 middle channels), 5 (conv stem, ``mid`` channels)
    dim: int
    mid: int = 24


@dataclass(frozen=True)
class BlockDef:
    dim: int
    num_heads: int
    head_dim: int
    mlp_hidden: int
    exists: bool = True


@dataclass(frozen=True)
class ReductionDef:
    in_dim: int
    out_dim: int


@dataclass(frozen=True)
class HeadDef:
    dim: int
    num_classes: int


def _ints(x: Any, n: int, what: str) -> tuple[int, ...]:
    if not isinstance(x, (tuple, list)) or len(x) != n or not all(isinstance(v, int) and v >= 0 for v in x):
        raise ValueError(f"{what}: expected {n} non-negative integers, got {x!r}")
    return tuple(x)


def parse_network_def(spec: str | Sequence[Any]) -> tuple[Any, ...]:
    """Parse and check the authors' network definition (their ``--network-def`` string, or the same
    nested tuples/lists). Returns ``(EmbedDef, BlockDef | ReductionDef ..., HeadDef)``; raises
    ``ValueError`` naming the first inconsistent entry (the authors' asserts, as messages)."""
    if isinstance(spec, str):
        try:
            spec = ast.literal_eval(spec.strip())  # literals only: never evaluates code
        except (ValueError, SyntaxError) as e:
            raise ValueError(f"network_def is not a tuple literal: {e}") from None
    if not isinstance(spec, (tuple, list)) or len(spec) < 2:
        raise ValueError("network_def needs at least an embedding entry and a head entry")
    first, *body, last = spec
    if not isinstance(first, (tuple, list)) or not first or first[0] not in (_EMBED_PATCH, _EMBED_CONV, _EMBED_CONV_FLEX):
        raise ValueError(f"entry 0 must be a patch embedding (0, dim), (4, dim) or (5, dim, mid), got {first!r}")
    if first[0] == _EMBED_CONV_FLEX:
        _, dim, mid = _ints(first, 3, "entry 0")
        embed = EmbedDef(_EMBED_CONV_FLEX, dim, mid)
    else:
        kind, dim = _ints(first[:2], 2, "entry 0")
        embed = EmbedDef(kind, dim)
    out: list[Any] = [embed]
    for i, e in enumerate(body, start=1):
        if not isinstance(e, (tuple, list)) or not e:
            raise ValueError(f"entry {i}: expected a tuple, got {e!r}")
        if e[0] == _TRANSFORMER:
            if len(e) != 4:
                raise ValueError(f"entry {i}: a transformer block is (1, (dim, heads, head_dim), (dim, hidden), exists)")
            adim, heads, head_dim = _ints(e[1], 3, f"entry {i} attention")
            fdim, hidden = _ints(e[2], 2, f"entry {i} mlp")
            if adim != fdim:
                raise ValueError(f"entry {i}: attention width {adim} != mlp width {fdim}")
            if adim != dim:
                raise ValueError(f"entry {i}: block width {adim} != the current embedding width {dim}")
            if e[3] not in (0, 1, True, False):
                raise ValueError(f"entry {i}: 'exists' must be 0 or 1, got {e[3]!r}")
            if e[3] and min(heads, head_dim, hidden) < 1:
                raise ValueError(f"entry {i}: heads, head_dim and hidden must be positive")
            out.append(BlockDef(dim, heads, head_dim, hidden, bool(e[3])))
        elif e[0] == _REDUCTION:
            _, din, dout = _ints(e, 3, f"entry {i}")
            if din != dim:
                raise ValueError(f"entry {i}: spatial reduction input {din} != the current embedding width {dim}")
            if dout < din:
                raise ValueError(f"entry {i}: spatial reduction cannot shrink channels ({din} -> {dout}): the residual is zero-padded")
            out.append(ReductionDef(din, dout))
            dim = dout
        else:
            raise ValueError(f"entry {i}: unknown block type {e[0]!r} (1 = transformer, 3 = spatial reduction)")
    if not isinstance(last, (tuple, list)) or not last or last[0] != _HEAD:
        raise ValueError(f"the last entry must be the head (2, dim, num_classes), got {last!r}")
    _, hdim, ncls = _ints(last, 3, "head entry")
    if hdim != dim:
        raise ValueError(f"head input {hdim} != the final embedding width {dim}")
    out.append(HeadDef(hdim, ncls))
    return tuple(out)


def _as_literal(defs: Sequence[Any]) -> tuple:
    """Parsed entries -> the authors' tuple form (kept on the model for reproducibility)."""
    out: list[tuple] = []
    for d in defs:
        if isinstance(d, EmbedDef):
            out.append((d.kind, d.dim, d.mid) if d.kind == _EMBED_CONV_FLEX else (d.kind, d.dim))
        elif isinstance(d, BlockDef):
            out.append((1, (d.dim, d.num_heads, d.head_dim), (d.dim, d.mlp_hidden), int(d.exists)))
        elif isinstance(d, ReductionDef):
            out.append((3, d.in_dim, d.out_dim))
        else:
            out.append((2, d.dim, d.num_classes))
    return tuple(out)


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------
class PatchEmbed(nn.Module):
    """Type 0: one ``patch x patch`` strided convolution (timm's PatchEmbed; keys ``proj.*``)."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class ConvPatchEmbed(nn.Module):
    """Types 4/5 (authors' ``PatchConvEmbed``): Conv-BN-ReLU (3x3, stride 2), two more 3x3
    Conv-BN-ReLU with a residual around them, then a ``patch/2`` strided projection."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, mid_chans: int = 24) -> None:
        super().__init__()
        if patch_size % 2:
            raise ValueError(f"the convolutional patch embedding needs an even patch size, got {patch_size}")
        self.conv1 = ConvNormAct(in_chans, mid_chans, 3, stride=2, padding=1, act_layer=nn.ReLU)
        self.conv2 = ConvNormAct(mid_chans, mid_chans, 3, padding=1, act_layer=nn.ReLU)
        self.conv3 = ConvNormAct(mid_chans, mid_chans, 3, padding=1, act_layer=nn.ReLU)
        self.conv_proj = nn.Conv2d(mid_chans, embed_dim, patch_size // 2, patch_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = x + self.conv3(self.conv2(x))
        return self.conv_proj(x)


class Block(nn.Module):
    """Pre-norm transformer block; attention inner width ``num_heads * head_dim`` (timm's Attention
    with ``attn_head_dim``), MLP hidden width given directly. Keys as the authors'."""

    def __init__(self, dim: int, num_heads: int, head_dim: int, mlp_hidden: int, drop: float = 0.0,
                 attn_drop: float = 0.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, attn_head_dim=head_dim, qkv_bias=True, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, mlp_hidden, act_layer=nn.GELU, drop=drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class RemovedBlock(nn.Identity):
    """A block the search removed (``exists = 0``): no weights, keeps the authors' block indices."""


class ResidualSpatialReduction(nn.Module):
    """Halve the token grid and widen the channels (authors' ``SpatialReductionPatchEmbedding``)."""

    def __init__(self, grid: tuple[int, int], in_dim: int, out_dim: int, num_tokens: int = 1) -> None:
        super().__init__()
        self.in_grid = grid
        self.grid = (grid[0] // 2, grid[1] // 2)
        self.num_tokens = num_tokens
        self.pad = out_dim - in_dim
        self.norm = nn.LayerNorm(in_dim, eps=1e-6)
        self.patch_reduce = nn.Conv2d(in_dim, out_dim, kernel_size=3, stride=2, padding=1)
        self.patch_pool = nn.AvgPool2d(2, 2)
        self.token_transform = nn.Linear(in_dim, out_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], out_dim))

    def _to_map(self, t: torch.Tensor) -> torch.Tensor:
        return t.transpose(1, 2).reshape(t.shape[0], t.shape[2], *self.in_grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nt = self.num_tokens
        res_tokens, res_patches = x[:, :nt], x[:, nt:]
        x = self.norm(x)  # all tokens: the class token is normalised too, then linearly projected
        patches = self.patch_reduce(self._to_map(x[:, nt:])).flatten(2).transpose(1, 2) + self.pos_embed
        tokens = self.token_transform(x[:, :nt])
        residual = torch.cat((res_tokens, self.patch_pool(self._to_map(res_patches)).flatten(2).transpose(1, 2)), dim=1)
        return torch.cat((tokens, patches), dim=1) + F.pad(residual, (0, self.pad))


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------
class ViTResNAS(nn.Module):
    """A multi-stage ViT built from the authors' network definition, with timm's interface.

    The position embeddings are sized for ``img_size`` (a multiple of ``patch_size * 2**reductions``,
    224 + 56n for the searched networks); inputs must have that size (load a checkpoint trained at
    another size through :func:`checkpoint_filter_fn`, which resamples the position embeddings
    bicubically as the authors' fine-tuning code does). ``num_classes`` overrides the head entry.
    ``distill_token`` adds the DeiT distillation token and head (eval forward: mean of both heads,
    as timm's distilled DeiT; the authors return both), ``patch_output`` the per-token head.
    """

    def __init__(
            self,
            network_def: str | Sequence[Any],
            img_size: int | Sequence[int] = 224,
            patch_size: int = 14,
            in_chans: int = 3,
            num_classes: int | None = None,
            global_pool: str = "token",
            distill_token: bool = False,
            patch_output: bool = True,
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        defs = parse_network_def(network_def)
        embed, body, head = defs[0], defs[1:-1], defs[-1]
        if global_pool not in ("token", ""):
            raise ValueError(f"global_pool must be 'token' or '', got {global_pool!r}")
        if distill_token and patch_output:
            raise ValueError("distill_token and patch_output cannot be combined (as in the authors' code)")
        self.network_def = _as_literal(defs)
        self.img_size = to_2tuple(img_size)
        n_red = sum(isinstance(d, ReductionDef) for d in body)
        step = patch_size * 2 ** n_red
        if self.img_size[0] % step or self.img_size[1] % step:
            raise ValueError(f"img_size {self.img_size} must be a multiple of patch_size * 2**reductions = {step} "
                             f"(224 + 56n for the searched networks)")
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.num_classes = head.num_classes if num_classes is None else num_classes
        self.global_pool = global_pool
        self.num_prefix_tokens = self.num_tokens = 2 if distill_token else 1
        self.grad_checkpointing = False

        grid = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.grid_size = grid
        if embed.kind == _EMBED_PATCH:
            self.patch_embed = PatchEmbed(in_chans, embed.dim, patch_size)
        else:
            self.patch_embed = ConvPatchEmbed(in_chans, embed.dim, patch_size, embed.mid)
        self.tokens = nn.Parameter(torch.zeros(1, self.num_tokens, embed.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid[0] * grid[1] + self.num_tokens, embed.dim))
        self.pos_drop = nn.Dropout(drop_rate)

        n_blocks = sum(isinstance(d, BlockDef) for d in body)
        dpr = torch.linspace(0, drop_path_rate, n_blocks, device="cpu").tolist() if n_blocks else []
        blocks: list[nn.Module] = []
        feature_info: list[dict[str, Any]] = []
        self._grids: list[tuple[int, int]] = []  # token grid after each block
        dim, reduction, j = embed.dim, patch_size, 0
        for d in body:
            if isinstance(d, BlockDef):
                blocks.append(Block(dim, d.num_heads, d.head_dim, d.mlp_hidden, drop_rate, attn_drop_rate, dpr[j])
                              if d.exists else RemovedBlock())
                j += 1
            else:
                # a stage ends before each spatial reduction
                feature_info.append(dict(num_chs=dim, reduction=reduction, module=f"blocks.{len(blocks) - 1}"
                                         if blocks else "patch_embed", index=len(blocks) - 1))
                blocks.append(ResidualSpatialReduction(grid, d.in_dim, d.out_dim, self.num_tokens))
                grid, dim, reduction = blocks[-1].grid, d.out_dim, reduction * 2
            self._grids.append(grid)
        feature_info.append(dict(num_chs=dim, reduction=reduction, module=f"blocks.{len(blocks) - 1}" if blocks else "patch_embed",
                                 index=len(blocks) - 1))
        self.blocks = nn.ModuleList(blocks)
        self._stage_ends = [f.pop("index") for f in feature_info]
        self.feature_info = feature_info
        self.num_features = self.head_hidden_size = self.embed_dim = dim
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.cls_head = nn.Linear(dim, self.num_classes) if self.num_classes > 0 else nn.Identity()
        self.dst_head = (nn.Linear(dim, self.num_classes) if self.num_classes > 0 else nn.Identity()) if distill_token else None
        self.patch_head = nn.Linear(dim, self.num_classes) if patch_output and self.num_classes > 0 else None
        self.distilled_training = False  # timm's flag: training forward returns (cls, dist) logits
        self.init_weights()

    # -- initialisation / timm plumbing --------------------------------------------------------------
    def init_weights(self) -> None:
        """The authors' initialisation: trunc-normal(0.02) position embeddings, tokens and Linear
        weights, zero Linear biases, LayerNorm 1/0; convolutions keep PyTorch's default."""
        if next(self.parameters()).is_meta:
            return
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.tokens, std=0.02)
        for m in self.modules():
            if isinstance(m, ResidualSpatialReduction):
                trunc_normal_(m.pos_embed, std=0.02)
            elif isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {"tokens"}  # the authors exclude only the class/distillation tokens

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^tokens|^pos_embed|^patch_embed", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def set_distilled_training(self, enable: bool = True) -> None:
        self.distilled_training = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.cls_head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            if global_pool not in ("token", ""):
                raise ValueError(f"global_pool must be 'token' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        make = lambda: nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()  # noqa: E731
        self.cls_head = make()
        if self.dst_head is not None:
            self.dst_head = make()
        if self.patch_head is not None:
            self.patch_head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else None

    @property
    def input_rules(self) -> InputRules:
        return default_input_rules(self).replace(
            fixed_size=self.img_size,
            fixed_size_reason="its position embeddings are sized for it; create it with img_size= (224 + 56n)")

    # -- forward -------------------------------------------------------------------------------------
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.tokens.expand(x.shape[0], -1, -1), x), dim=1)
        return self.pos_drop(x + self.pos_embed)

    def _run(self, blk: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint(blk, x)
        return blk(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens of the last stage, (B, prefix + H*W, C); the class token first. (The
        authors normalise only the prefix tokens in eval; LayerNorm is per token, so they agree.)"""
        x = self._embed(x)
        for blk in self.blocks:
            x = self._run(blk, x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.global_pool != "token":
            return x  # global_pool='': the tokens pass through, no classifier
        if pre_logits:
            return x[:, 0]
        cls = self.cls_head(x[:, 0])
        if self.dst_head is None:
            return cls
        dst = self.dst_head(x[:, 1])
        if self.distilled_training and self.training and not torch.jit.is_scripting():
            return cls, dst
        return (cls + dst) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_patch_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(class logits, per-patch logits (B, H*W, classes)): the authors' training output with
        ``patch_output`` (for shifted patch-token mixup)."""
        if self.patch_head is None:
            raise RuntimeError("this model has no patch head (built with patch_output=False or num_classes=0)")
        feats = self.forward_features(x)
        return self.cls_head(feats[:, 0]), self.patch_head(feats[:, self.num_tokens:])

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs (before each spatial reduction, and the last) as NCHW maps of the patch
        tokens (``NLC``: all tokens); ``norm`` applies the final norm to the last stage's output."""
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError("output_fmt must be 'NCHW' or 'NLC'")
        take, max_index = feature_take_indices(len(self._stage_ends), indices)
        last_block = self._stage_ends[max_index] if stop_early or intermediates_only else len(self.blocks) - 1
        x = self._embed(x)
        out: list[torch.Tensor] = []
        ends = {e: s for s, e in enumerate(self._stage_ends)}

        def emit(i: int, t: torch.Tensor) -> None:
            s = ends.get(i)
            if s is None or s not in take:
                return
            if norm and s == len(self._stage_ends) - 1:
                t = self.norm(t)
            if output_fmt == "NLC":
                out.append(t)
            else:
                h, w = self._grids[i] if i >= 0 else self.grid_size
                p = t[:, self.num_tokens:]
                out.append(p.transpose(1, 2).reshape(p.shape[0], p.shape[2], h, w))

        emit(-1, x)
        for i, blk in enumerate(self.blocks[: last_block + 1]):
            x = self._run(blk, x)
            emit(i, x)
        if intermediates_only:
            return out
        return self.norm(x), out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(len(self._stage_ends), indices)
        self.blocks = self.blocks[: self._stage_ends[max_index] + 1]
        if prune_norm or max_index < len(self._stage_ends) - 1:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take


# --------------------------------------------------------------------------------------------------
# Checkpoints, reference vectors, registration
# --------------------------------------------------------------------------------------------------
def _resample(pe: torch.Tensor, new_hw: tuple[int, int]) -> torch.Tensor:
    n = pe.shape[1]
    side = int(math.isqrt(n))
    if side * side != n:
        raise ValueError(f"cannot resample a position embedding of {n} positions (not a square grid)")
    m = pe.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    m = F.interpolate(m, size=new_hw, mode="bicubic", align_corners=False)
    return m.permute(0, 2, 3, 1).flatten(1, 2).to(pe.dtype)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The authors' keys are archzoo's; strips ``module.``, unwraps ``model``/``model_ema``, and
    resamples position embeddings (bicubic, class/distillation rows kept) when the checkpoint was
    trained at another resolution, as the authors' ``state_dict_interpolate_pos_embed``."""
    state_dict = unwrap_state_dict(state_dict, wrapper_keys=("model_ema", "model", "state_dict"))
    own = model.state_dict()
    nt = getattr(model, "num_tokens", 1)
    out = {}
    for k, v in state_dict.items():
        if k.endswith("pos_embed") and k in own and v.shape != own[k].shape and not v.is_meta:
            if k == "pos_embed":
                hw = model.grid_size
                v = torch.cat((v[:, :nt], _resample(v[:, nt:], hw)), dim=1)
            else:
                idx = int(k.split(".")[1])
                v = _resample(v, model.blocks[idx].grid)
        out[k] = v
    return out


_AUTHORS_KEYS = ("img_size", "patch_size", "in_chans", "num_classes", "distill_token", "patch_output",
                 "network_def", "drop_rate", "attn_drop_rate", "drop_path_rate")


def _ref_forward(model: nn.Module, inputs: dict) -> dict:
    # the authors' eval output: the class logits, or (class, distillation) logits with distill_token
    feats = model.forward_features(inputs[""])
    cls = model.cls_head(feats[:, 0])
    if model.dst_head is None:
        return {"__output__": cls}
    return {"__output__.0": cls, "__output__.1": model.dst_head(feats[:, 1])}


@register_reference("vit_resnas", forward=_ref_forward)
def _reference_vit_resnas(config: dict, meta: dict) -> nn.Module:
    kwargs = {k: v for k, v in config.items() if k in _AUTHORS_KEYS}
    unknown = sorted(set(config) - set(_AUTHORS_KEYS) - {"supernet", "num_channels_to_keep", "example_per_arch",
                                                         "num_warmup_epochs", "single_arch", "hybrid_arch"})
    if unknown:
        raise ValueError(f"unsupported ViT-ResNAS options: {unknown}")
    if config.get("supernet"):
        raise ValueError("the super-network (channel dropping) is out of scope; build a searched network")
    kwargs.setdefault("distill_token", True)  # the authors' constructor defaults
    kwargs.setdefault("patch_output", False)
    return ViTResNAS(**kwargs)


# Searched networks (scripts/vit-sr-nas/searched_net/{tiny, small_mac@2.9G, medium_mac@4.6G}.sh)
NETWORK_DEFS: dict[str, str] = {
    "tiny": (
        "((4, 176), (1, (176, 3, 32), (176, 704), 1), (1, (176, 3, 32), (176, 576), 1), "
        "(1, (176, 3, 32), (176, 640), 1), (1, (176, 4, 32), (176, 576), 1), (1, (176, 4, 32), (176, 704), 1), "
        "(3, 176, 352), (1, (352, 10, 48), (352, 1408), 1), (1, (352, 8, 48), (352, 1408), 1), "
        "(1, (352, 8, 48), (352, 1280), 1), (1, (352, 8, 48), (352, 1408), 1), (1, (352, 10, 48), (352, 1280), 1), "
        "(1, (352, 10, 48), (352, 1024), 1), (3, 352, 704), (1, (704, 10, 64), (704, 2560), 1), "
        "(1, (704, 10, 64), (704, 1792), 1), (1, (704, 10, 64), (704, 2816), 1), (1, (704, 8, 64), (704, 2816), 1), "
        "(1, (704, 8, 64), (704, 2560), 1), (2, 704, 1000))"
    ),
    "small": (
        "((4, 220), (1, (220, 5, 32), (220, 880), 1), (1, (220, 5, 32), (220, 880), 1), "
        "(1, (220, 7, 32), (220, 800), 1), (1, (220, 5, 32), (220, 720), 1), (1, (220, 5, 32), (220, 720), 1), "
        "(1, (220, 5, 32), (220, 720), 1), (3, 220, 440), (1, (440, 10, 48), (440, 1760), 1), "
        "(1, (440, 10, 48), (440, 1440), 1), (1, (440, 10, 48), (440, 1920), 1), (1, (440, 10, 48), (440, 1600), 1), "
        "(1, (440, 12, 48), (440, 1600), 1), (1, (440, 12, 48), (440, 1440), 1), (3, 440, 880), "
        "(1, (880, 16, 64), (880, 3200), 1), (1, (880, 12, 64), (880, 3200), 1), (1, (880, 16, 64), (880, 2880), 1), "
        "(1, (880, 12, 64), (880, 2240), 1), (1, (880, 14, 64), (880, 2560), 1), (2, 880, 1000))"
    ),
    "medium": (
        "((4, 240), (1, (240, 7, 32), (240, 960), 1), (1, (240, 6, 32), (240, 960), 1), "
        "(1, (240, 7, 32), (240, 800), 1), (1, (240, 8, 32), (240, 960), 1), (1, (240, 7, 32), (240, 880), 1), "
        "(1, (240, 8, 32), (240, 880), 1), (1, (240, 6, 32), (240, 800), 1), (3, 240, 640), "
        "(1, (640, 10, 48), (640, 1120), 1), (1, (640, 14, 48), (640, 1760), 1), (1, (640, 14, 48), (640, 1920), 1), "
        "(1, (640, 16, 48), (640, 1760), 1), (1, (640, 14, 48), (640, 1440), 1), (1, (640, 16, 48), (640, 1760), 1), "
        "(1, (640, 16, 48), (640, 1920), 1), (3, 640, 880), (1, (880, 16, 64), (880, 3200), 1), "
        "(1, (880, 10, 64), (880, 3840), 1), (1, (880, 16, 64), (880, 3840), 1), (1, (880, 12, 64), (880, 3200), 1), "
        "(1, (880, 16, 64), (880, 3520), 1), (1, (880, 14, 64), (880, 3520), 1), (2, 880, 1000))"
    ),
}


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ViTResNAS:
    out_indices = kwargs.pop("out_indices", (0, 1, 2))
    return build_model_with_cfg(
        ViTResNAS, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"), **kwargs)


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    # the authors' evaluation (DeiT's): resize to size / 0.875, bicubic, centre crop, ImageNet mean/std
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 0.875,
        "interpolation": "bicubic", "fixed_input_size": True, "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "patch_embed.conv1.conv", "classifier": "cls_head",
        "paper_ids": "arXiv:2109.00642", "origin_url": "https://github.com/yilunliao/vit-search", **kwargs,
    }


# The authors' weights are on Dropbox (no direct URL): load them with checkpoint_path=.
default_cfgs = generate_default_cfgs({
    "vit_resnas_tiny.in1k": _cfg(),
    "vit_resnas_small.in1k": _cfg(),
    "vit_resnas_medium.in1k": _cfg(),
})


@register_model
def vit_resnas_tiny(pretrained: bool = False, **kwargs: Any) -> ViTResNAS:
    """ViT-ResNAS-Tiny (41.50 M params, 1.8 GMACs at 224); authors' searched_net/tiny.sh."""
    return _create("vit_resnas_tiny", pretrained, **dict(dict(network_def=NETWORK_DEFS["tiny"]), **kwargs))


@register_model
def vit_resnas_small(pretrained: bool = False, **kwargs: Any) -> ViTResNAS:
    """ViT-ResNAS-Small (64.61 M params, 2.9 GMACs at 224); authors' searched_net/small_mac@2.9G.sh."""
    return _create("vit_resnas_small", pretrained, **dict(dict(network_def=NETWORK_DEFS["small"]), **kwargs))


@register_model
def vit_resnas_medium(pretrained: bool = False, **kwargs: Any) -> ViTResNAS:
    """ViT-ResNAS-Medium (97.32 M params, 4.5 GMACs at 224); authors' searched_net/medium_mac@4.6G.sh."""
    return _create("vit_resnas_medium", pretrained, **dict(dict(network_def=NETWORK_DEFS["medium"]), **kwargs))
