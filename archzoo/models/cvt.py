"""CvT: Introducing Convolutions to Vision Transformers (Wu et al., arXiv 2103.15808).

Authors' code: https://github.com/microsoft/CvT (``lib/models/cls_cvt.py``); this module follows it
at commit f851e68 and loads its checkpoints through :func:`checkpoint_filter_fn`.

A CvT has (usually three) stages. Each stage starts with a *convolutional token embedding* (a strided
convolution, then a LayerNorm over the tokens) and continues with transformer blocks whose q/k/v are
*convolutional projections*: a depthwise conv + BatchNorm on the 2-D token map (stride 1 for q,
stride 2 for k and v, which shortens the key/value sequence four-fold), each followed by a linear
projection. There is no positional embedding; the class token exists only in the last stage.

Details kept from the authors' code:
- attention scale is ``dim ** -0.5`` with the full embedding width, not the head width;
- the class token is split off before the conv projections and concatenated, unprojected by the
  conv, in front of q, k and v;
- the MLP uses QuickGELU (``x * sigmoid(1.702 x)``) and LayerNorm (eps 1e-5) is computed in at
  least float32;
- drop-path rates rise linearly *within* each stage (``DROP_PATH_RATE`` is given per stage).

Deviation: the authors' head input is ``torch.squeeze(norm(cls_token))``, which also drops the batch
dimension of a batch of one; here a batch of one stays a batch of one.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, QuickGELU, to_2tuple, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference

__all__ = ["ConvolutionalVisionTransformer", "CvT", "checkpoint_filter_fn"]

PROJ_METHODS = ("dw_bn", "avg", "linear")


def _per_stage(value: Any, n: int, name: str) -> tuple:
    """Broadcast a scalar to one value per stage; check the length of a sequence."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} needs {n} values (one per stage), got {len(value)}")
        return tuple(value)
    return (value,) * n


class LayerNormFp32Min(nn.LayerNorm):
    """LayerNorm computed in at least float32 (the authors upcast fp16 inputs to float32).

    Unlike ``timm.layers.LayerNormFp32`` it does not downcast float64 inputs, so the model also
    runs in float64 (the authors' version fails there).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = torch.promote_types(x.dtype, torch.float32)
        weight = self.weight.to(dtype) if self.weight is not None else None
        bias = self.bias.to(dtype) if self.bias is not None else None
        return F.layer_norm(x.to(dtype), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


class ConvEmbed(nn.Module):
    """Convolutional token embedding: strided conv, then LayerNorm over the channel of each token."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int = 7, stride: int = 4, padding: int = 2,
                 norm_layer: Callable[[int], nn.Module] | None = None) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=to_2tuple(patch_size), stride=stride, padding=padding)
        self.norm = norm_layer(embed_dim) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        # a token-wise LayerNorm is a channels-last LayerNorm of the map
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvProjection(nn.Module):
    """Convolutional projection of a token map into a token sequence (before the linear q/k/v).

    ``dw_bn``: depthwise conv (no bias) + BatchNorm; ``avg``: average pooling (ceil mode).
    Submodule names (``conv``, ``bn``) follow the authors' checkpoints.
    """

    def __init__(self, dim: int, method: str, kernel_size: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        if method == "dw_bn":
            self.conv = nn.Conv2d(dim, dim, kernel_size, stride=stride, padding=padding, bias=False, groups=dim)
            self.bn = nn.BatchNorm2d(dim)
        elif method == "avg":
            self.avg = nn.AvgPool2d(kernel_size, stride=stride, padding=padding, ceil_mode=True)
        else:
            raise ValueError(f"unknown convolutional projection {method!r} (use one of {PROJ_METHODS[:2]})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x)) if hasattr(self, "conv") else self.avg(x)
        return x.flatten(2).transpose(1, 2)  # B C H W -> B (H W) C


class ConvAttention(nn.Module):
    """Multi-head self-attention with convolutional q/k/v projections (authors' ``Attention``)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, method: str = "dw_bn", kernel_size: int = 3, stride_kv: int = 1,
                 stride_q: int = 1, padding_kv: int = 1, padding_q: int = 1, with_cls_token: bool = True) -> None:
        super().__init__()
        if method not in PROJ_METHODS:
            raise ValueError(f"unknown QKV projection method {method!r} (use one of {PROJ_METHODS})")
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = dim ** -0.5  # the authors scale by the full width, not the head width
        self.with_cls_token = with_cls_token
        self.fused_attn = use_fused_attn()
        # 'avg' pools k and v but leaves q unprojected, as in the authors' code; 'linear' has no conv
        q_method = "linear" if method == "avg" else method
        self.conv_proj_q = None if q_method == "linear" else ConvProjection(dim, q_method, kernel_size, stride_q, padding_q)
        self.conv_proj_k = None if method == "linear" else ConvProjection(dim, method, kernel_size, stride_kv, padding_kv)
        self.conv_proj_v = None if method == "linear" else ConvProjection(dim, method, kernel_size, stride_kv, padding_kv)
        self.proj_q = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_k = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj_v = nn.Linear(dim, dim, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _conv_qkv(self, x: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls_tok = None
        if self.with_cls_token:
            cls_tok, x = x[:, :1], x[:, 1:]
        B, N, C = x.shape
        fmap = x.transpose(1, 2).reshape(B, C, h, w)
        out = []
        for proj in (self.conv_proj_q, self.conv_proj_k, self.conv_proj_v):
            t = x if proj is None else proj(fmap)
            if cls_tok is not None:  # the class token bypasses the conv projection
                t = torch.cat((cls_tok, t), dim=1)
            out.append(t)
        return out[0], out[1], out[2]

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        return x.reshape(B, N, self.num_heads, C // self.num_heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        q, k, v = self._conv_qkv(x, h, w)
        q, k, v = self._heads(self.proj_q(q)), self._heads(self.proj_k(k)), self._heads(self.proj_v(v))
        if self.fused_attn:
            x = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0, scale=self.scale)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.scale
            attn = self.attn_drop(attn.softmax(dim=-1))
            x = attn @ v
        B, _, N, _ = x.shape
        x = x.transpose(1, 2).reshape(B, N, -1)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    """Pre-norm transformer block with convolutional attention and a QuickGELU MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 proj_drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 act_layer: Callable[..., nn.Module] = QuickGELU,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, **attn_kwargs: Any) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = ConvAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=proj_drop,
                                  **attn_kwargs)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=proj_drop)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x), h, w))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class CvTStage(nn.Module):
    """One stage (the authors' ``VisionTransformer``): conv token embedding, optional class token,
    blocks. Takes and returns an NCHW map; also returns the class token (B, 1, C) or None."""

    def __init__(self, in_chans: int, dim: int, depth: int, num_heads: int, patch_size: int = 7,
                 patch_stride: int = 4, patch_padding: int = 2, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 with_cls_token: bool = False, act_layer: Callable[..., nn.Module] = QuickGELU,
                 norm_layer: Callable[[int], nn.Module] = nn.LayerNorm, **attn_kwargs: Any) -> None:
        super().__init__()
        self.patch_embed = ConvEmbed(in_chans, dim, patch_size, patch_stride, patch_padding, norm_layer)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if with_cls_token else None
        self.pos_drop = nn.Dropout(drop_rate)
        # linear drop-path rule inside the stage, as the authors do (rates are per stage)
        dpr = [drop_path_rate * j / (depth - 1) if depth > 1 else 0.0 for j in range(depth)]
        self.blocks = nn.ModuleList([
            Block(dim, num_heads, mlp_ratio, qkv_bias, proj_drop=drop_rate, attn_drop=attn_drop_rate,
                  drop_path=dpr[j], act_layer=act_layer, norm_layer=norm_layer, with_cls_token=with_cls_token,
                  **attn_kwargs)
            for j in range(depth)
        ])
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.patch_embed(x)
        B, C, H, W = x.shape
        x = x.flatten(2).transpose(1, 2)
        if self.cls_token is not None:
            x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1)
        x = self.pos_drop(x)
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, H, W)
            else:
                x = blk(x, H, W)
        cls_tok = None
        if self.cls_token is not None:
            cls_tok, x = x[:, :1], x[:, 1:]
        return x.transpose(1, 2).reshape(B, C, H, W), cls_tok


class ConvolutionalVisionTransformer(nn.Module):
    """CvT with timm's interface. Per-stage arguments take one value per stage (or a scalar)."""

    def __init__(
            self,
            in_chans: int = 3,
            num_classes: int = 1000,
            global_pool: str | None = None,
            embed_dims: Sequence[int] = (64, 192, 384),
            depths: Sequence[int] = (1, 2, 10),
            num_heads: Sequence[int] = (1, 3, 6),
            patch_sizes: Sequence[int] | int = (7, 3, 3),
            patch_strides: Sequence[int] | int = (4, 2, 2),
            patch_paddings: Sequence[int] | int = (2, 1, 1),
            mlp_ratios: Sequence[float] | float = 4.0,
            qkv_bias: Sequence[bool] | bool = True,
            cls_token: Sequence[bool] | bool = (False, False, True),
            qkv_proj_method: Sequence[str] | str = "dw_bn",
            kernel_qkv: Sequence[int] | int = 3,
            padding_q: Sequence[int] | int = 1,
            stride_q: Sequence[int] | int = 1,
            padding_kv: Sequence[int] | int = 1,
            stride_kv: Sequence[int] | int = 2,
            drop_rate: Sequence[float] | float = 0.0,
            attn_drop_rate: Sequence[float] | float = 0.0,
            drop_path_rate: Sequence[float] | float = (0.0, 0.0, 0.1),
            act_layer: Callable[..., nn.Module] = QuickGELU,
            norm_layer: Callable[[int], nn.Module] | None = None,
            init: str = "trunc_norm",
    ) -> None:
        super().__init__()
        n = len(embed_dims)
        if len(depths) != n or len(num_heads) != n:
            raise ValueError("embed_dims, depths and num_heads need one value per stage")
        ps = lambda v, name: _per_stage(v, n, name)  # noqa: E731
        patch_sizes, patch_strides, patch_paddings = ps(patch_sizes, "patch_sizes"), ps(patch_strides, "patch_strides"), ps(patch_paddings, "patch_paddings")
        mlp_ratios, qkv_bias, cls_token = ps(mlp_ratios, "mlp_ratios"), ps(qkv_bias, "qkv_bias"), ps(cls_token, "cls_token")
        qkv_proj_method, kernel_qkv = ps(qkv_proj_method, "qkv_proj_method"), ps(kernel_qkv, "kernel_qkv")
        padding_q, stride_q = ps(padding_q, "padding_q"), ps(stride_q, "stride_q")
        padding_kv, stride_kv = ps(padding_kv, "padding_kv"), ps(stride_kv, "stride_kv")
        drop_rate, attn_drop_rate = ps(drop_rate, "drop_rate"), ps(attn_drop_rate, "attn_drop_rate")
        drop_path_rate = ps(drop_path_rate, "drop_path_rate")
        if any(s != 1 for s in stride_q):
            raise ValueError("stride_q must be 1: the block's residual needs as many queries as tokens")
        norm_layer = norm_layer or partial(LayerNormFp32Min, eps=1e-5)

        self.num_classes = num_classes
        self.in_chans = in_chans
        self.num_prefix_tokens = 1 if cls_token[-1] else 0
        self.global_pool = global_pool if global_pool is not None else ("token" if cls_token[-1] else "avg")
        self._check_pool(self.global_pool)
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dims[-1]

        stages, feature_info, reduction, chans = [], [], 1, in_chans
        for i in range(n):
            stages.append(CvTStage(
                chans, embed_dims[i], depths[i], num_heads[i],
                patch_size=patch_sizes[i], patch_stride=patch_strides[i], patch_padding=patch_paddings[i],
                mlp_ratio=mlp_ratios[i], qkv_bias=qkv_bias[i], drop_rate=drop_rate[i],
                attn_drop_rate=attn_drop_rate[i], drop_path_rate=drop_path_rate[i], with_cls_token=cls_token[i],
                act_layer=act_layer, norm_layer=norm_layer, method=qkv_proj_method[i], kernel_size=kernel_qkv[i],
                stride_kv=stride_kv[i], stride_q=stride_q[i], padding_kv=padding_kv[i], padding_q=padding_q[i],
            ))
            reduction *= patch_strides[i]
            chans = embed_dims[i]
            feature_info.append(dict(num_chs=chans, reduction=reduction, module=f"stages.{i}"))
        self.stages = nn.ModuleList(stages)
        self.feature_info = feature_info
        self.norm = norm_layer(self.num_features)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.init_weights(init)

    @staticmethod
    def _check_pool(global_pool: str) -> None:
        if global_pool not in ("token", "avg", ""):
            raise ValueError(f"global_pool must be 'token', 'avg' or '', got {global_pool!r}")

    def init_weights(self, mode: str = "trunc_norm") -> None:
        """The authors' initialisation: ``trunc_norm`` or ``xavier`` for the stages' linears."""
        if mode not in ("trunc_norm", "xavier"):
            raise ValueError(f"init must be 'trunc_norm' or 'xavier', got {mode!r}")
        if next(self.parameters()).is_meta:
            return  # nothing to fill on the meta device (and trunc_normal_ decomposes slowly there)
        for stage in self.stages:
            if stage.cls_token is not None:
                trunc_normal_(stage.cls_token, std=0.02)
            for m in stage.modules():
                if isinstance(m, nn.Linear):
                    if mode == "xavier":
                        nn.init.xavier_uniform_(m.weight)
                    else:
                        trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
        if isinstance(self.head, nn.Linear):
            trunc_normal_(self.head.weight, std=0.02)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {f"stages.{i}.cls_token" for i, s in enumerate(self.stages) if s.cls_token is not None}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(
            stem=r"^stages\.0\.patch_embed",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^stages\.(\d+)\.(?:patch_embed|cls_token)", (0,)),
                (r"^stages\.(\d+)\.blocks\.(\d+)", None),
                (r"^norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for s in self.stages:
            s.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self._check_pool(global_pool)
            if global_pool == "token" and not self.num_prefix_tokens:
                raise ValueError("global_pool='token' needs a class token in the last stage")
            self.global_pool = global_pool
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _norm_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs as NCHW maps (class tokens dropped); ``norm`` applies the final norm to the
        last stage's map. Returns ``(final tokens, intermediates)`` unless ``intermediates_only``."""
        if output_fmt != "NCHW":
            raise ValueError("CvT intermediates are NCHW maps")
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        last = len(self.stages) - 1
        stages = self.stages[: max_index + 1] if stop_early or intermediates_only else self.stages
        intermediates, cls_tok = [], None
        for i, stage in enumerate(stages):
            x, cls_tok = stage(x)
            if i in take_indices:
                intermediates.append(self._norm_map(x) if norm and i == last else x)
        if intermediates_only:
            return intermediates
        return self._tokens(x, cls_tok), intermediates

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        if prune_norm or max_index < len(self.feature_info) - 1:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def _tokens(self, x: torch.Tensor, cls_tok: torch.Tensor | None) -> torch.Tensor:
        x = x.flatten(2).transpose(1, 2)
        if cls_tok is not None:
            x = torch.cat((cls_tok, x), dim=1)
        return self.norm(x)  # token-wise: the same as the authors' norm of the class token alone

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised tokens of the last stage, (B, prefix + H*W, C); the class token first."""
        cls_tok = None
        for stage in self.stages:
            x, cls_tok = stage(x)
        return self._tokens(x, cls_tok)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "token":
            x = x[:, 0]  # indexing keeps the batch dimension for a batch of one (authors: squeeze)
        elif self.global_pool == "avg":
            x = x[:, self.num_prefix_tokens:].mean(dim=1)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


CvT = ConvolutionalVisionTransformer


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Authors' keys (``stage{i}.…``) -> archzoo's (``stages.{i}.…``); archzoo keys pass unchanged."""
    out = {}
    for k, v in unwrap_state_dict(state_dict).items():
        if re.match(r"stage\d+\.pos_embed$", k):
            continue  # declared by POS_EMBED configs but never used in the authors' forward
        out[re.sub(r"^stage(\d+)\.", r"stages.\1.", k)] = v
    return out


def _spec_kwargs(spec: dict[str, Any]) -> dict[str, Any]:
    """The authors' SPEC dict (their yaml ``MODEL.SPEC``) -> constructor keyword arguments."""
    n = spec["NUM_STAGES"]
    get = lambda key, default: list(spec.get(key, [default] * n))  # noqa: E731
    return dict(
        embed_dims=spec["DIM_EMBED"], depths=spec["DEPTH"], num_heads=spec["NUM_HEADS"],
        patch_sizes=spec["PATCH_SIZE"], patch_strides=spec["PATCH_STRIDE"], patch_paddings=spec["PATCH_PADDING"],
        mlp_ratios=get("MLP_RATIO", 4.0), qkv_bias=get("QKV_BIAS", False), cls_token=get("CLS_TOKEN", False),
        qkv_proj_method=get("QKV_PROJ_METHOD", "dw_bn"), kernel_qkv=get("KERNEL_QKV", 3),
        padding_q=get("PADDING_Q", 1), stride_q=get("STRIDE_Q", 1), padding_kv=get("PADDING_KV", 1),
        stride_kv=get("STRIDE_KV", 1), drop_rate=get("DROP_RATE", 0.0), attn_drop_rate=get("ATTN_DROP_RATE", 0.0),
        drop_path_rate=get("DROP_PATH_RATE", 0.0), init=spec.get("INIT", "trunc_norm"),
    )


@register_reference("cvt")
def _reference_cvt(config: dict, meta: dict) -> nn.Module:
    return ConvolutionalVisionTransformer(num_classes=config.get("num_classes", 1000), **_spec_kwargs(config["SPEC"]))


def _create_cvt(variant: str, pretrained: bool = False, **kwargs: Any) -> ConvolutionalVisionTransformer:
    n = len(kwargs.get("depths", (1, 2, 10)))
    out_indices = kwargs.pop("out_indices", tuple(range(n)))
    return build_model_with_cfg(
        ConvolutionalVisionTransformer, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **kwargs,
    )


def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    # the authors' evaluation: resize to size / 0.875, centre crop, bilinear, ImageNet mean/std
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None,
        "crop_pct": 0.875, "interpolation": "bilinear", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stages.0.patch_embed.proj", "classifier": "head",
        "paper_ids": "arXiv:2103.15808", "origin_url": "https://github.com/microsoft/CvT",
        **kwargs,
    }


# The authors' weights are on OneDrive (no direct URL): load them with checkpoint_path=.
default_cfgs = generate_default_cfgs({
    "cvt_13.ms_in1k": _cfg(),
    "cvt_21.ms_in1k": _cfg(),
    "cvt_13_384.ms_in1k": _cfg(input_size=(3, 384, 384)),
    "cvt_13_384.ms_in22k_ft_in1k": _cfg(input_size=(3, 384, 384)),
    "cvt_21_384.ms_in1k": _cfg(input_size=(3, 384, 384)),
    "cvt_21_384.ms_in22k_ft_in1k": _cfg(input_size=(3, 384, 384)),
    "cvt_w24_384.ms_in22k_ft_in1k": _cfg(input_size=(3, 384, 384)),
})

# Architectures of the authors' experiments/imagenet/cvt/*.yaml (the 384 variants differ only in
# resolution; DROP_PATH_RATE is per stage).
_CVT_13 = dict(embed_dims=(64, 192, 384), depths=(1, 2, 10), num_heads=(1, 3, 6), drop_path_rate=(0.0, 0.0, 0.1))
_CVT_21 = dict(embed_dims=(64, 192, 384), depths=(1, 4, 16), num_heads=(1, 3, 6), drop_path_rate=(0.0, 0.0, 0.1))
_CVT_W24 = dict(embed_dims=(192, 768, 1024), depths=(2, 2, 20), num_heads=(3, 12, 16), drop_path_rate=(0.0, 0.0, 0.3))


@register_model
def cvt_13(pretrained: bool = False, **kwargs: Any) -> ConvolutionalVisionTransformer:
    """CvT-13 at 224x224 (20 M params)."""
    return _create_cvt("cvt_13", pretrained, **dict(_CVT_13, **kwargs))


@register_model
def cvt_21(pretrained: bool = False, **kwargs: Any) -> ConvolutionalVisionTransformer:
    """CvT-21 at 224x224 (32 M params)."""
    return _create_cvt("cvt_21", pretrained, **dict(_CVT_21, **kwargs))


@register_model
def cvt_13_384(pretrained: bool = False, **kwargs: Any) -> ConvolutionalVisionTransformer:
    """CvT-13 at 384x384."""
    return _create_cvt("cvt_13_384", pretrained, **dict(_CVT_13, **kwargs))


@register_model
def cvt_21_384(pretrained: bool = False, **kwargs: Any) -> ConvolutionalVisionTransformer:
    """CvT-21 at 384x384."""
    return _create_cvt("cvt_21_384", pretrained, **dict(_CVT_21, **kwargs))


@register_model
def cvt_w24_384(pretrained: bool = False, **kwargs: Any) -> ConvolutionalVisionTransformer:
    """CvT-W24 at 384x384 (277 M params; ImageNet-22k pre-trained, fine-tuned on ImageNet-1k)."""
    return _create_cvt("cvt_w24_384", pretrained, **dict(_CVT_W24, **kwargs))
