"""EMOv2: Pushing 5M Vision Model Frontier (Zhang et al., arXiv:2412.06674).

Authors' code: https://github.com/zhangzjn/EMOv2 (``model/lib_emo/emo2.py``, ``basic_modules.py``).

EMOv2 is a 4-stage network built from one block, the Improved Inverted Residual Mobile Block
(i2RMB)::

    x -> norm -> F(x)  (1x1 expansion, or spanning window attention whose values are the expansion)
      -> y + DWConv5x5-BN-SiLU(y)  (inner skip) -> 1x1 projection -> layer scale -> + x

The attention ("SEW-MHSA", ``EW_MHSA_Hybrid`` in the authors' code) zero-pads the map to a multiple
of the window, computes q/k (one shared 1x1 projection) and v once, and attends inside two window
partitions of the same padded map: close windows (contiguous ws x ws tiles) and remote windows
(a dilated grid: every n-th pixel, n = number of windows per side). The two outputs are summed
and cropped. The first block of every stage has stride 2, twice the expansion ratio, a plain 1x1
expansion (no attention) and no residual.

archzoo's module tree follows timm (``stem``, ``stages.<i>``, ``norm``, ``head``);
:func:`checkpoint_filter_fn` maps the authors' keys (``stage0`` -> ``stem``, ``stage<i>`` ->
``stages.<i-1>``, ``LayerNorm2d`` wrappers, layer-scale shapes). The authors' forward returns
``{'out': logits, 'out_kd': logits}`` (one tensor twice); archzoo returns the logits tensor and,
the timm way, a ``(logits, logits_kd)`` tuple while training after ``set_distilled_training()``.
"""
from __future__ import annotations

import math
import re
from functools import partial
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, LayerScale2d, get_act_layer, trunc_normal_, use_fused_attn
from timm.models import register_model
from timm.models._builder import build_model_with_cfg
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference

__all__ = ["EMOv2", "I2RMB", "SpanningWindowAttention", "checkpoint_filter_fn"]

# The authors' layer names (basic_modules.get_norm / get_act); every norm uses eps=1e-6.
_EPS = 1e-6
_ACT_ALIASES = {"hsigmoid": "hard_sigmoid", "hswish": "hard_swish", "hmish": "hard_mish", "none": "identity"}


def _norm_layer(name: str) -> Callable[[int], nn.Module]:
    norms: dict[str, Callable[[int], nn.Module]] = {
        "none": lambda dim: nn.Identity(),
        "bn_2d": partial(nn.BatchNorm2d, eps=_EPS),
        "ln_2d": partial(LayerNorm2d, eps=_EPS),
    }
    if name not in norms:
        raise ValueError(f"EMOv2: unsupported norm layer {name!r} (one of {sorted(norms)})")
    return norms[name]


def _act_layer(name: str) -> type[nn.Module]:
    return get_act_layer(_ACT_ALIASES.get(name, name))


class ConvNormAct(nn.Module):
    """Conv -> norm -> act with the authors' padding rule and key names (``conv``/``norm``).

    timm's ``ConvNormAct`` cannot apply an activation without a norm (EMOv2's expansion and value
    projections are conv + act), and names its norm ``bn``; hence this small module.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 1,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        norm_layer: str = "bn_2d",
        act_layer: str = "relu",
    ) -> None:
        super().__init__()
        padding = math.ceil((kernel_size - stride) / 2)  # the authors' rule (same as k // 2 for odd k)
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=bias)
        self.norm = _norm_layer(norm_layer)(out_chs)
        self.act = _act_layer(act_layer)()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


def _to_windows(t: torch.Tensor, n: tuple[int, int], ws: tuple[int, int], dilated: bool) -> torch.Tensor:
    """(B, C, n1*ws1, n2*ws2) -> (B*n1*n2, C, ws1*ws2), windows in (b, n1, n2) order.

    close windows: pixel (a*ws1 + i, b*ws2 + j) is token (i, j) of window (a, b);
    remote windows: pixel (i*n1 + a, j*n2 + b) is token (i, j) of window (a, b) (a dilated grid).
    """
    B, C = t.shape[:2]
    if dilated:
        t = t.reshape(B, C, ws[0], n[0], ws[1], n[1]).permute(0, 3, 5, 1, 2, 4)
    else:
        t = t.reshape(B, C, n[0], ws[0], n[1], ws[1]).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(B * n[0] * n[1], C, ws[0] * ws[1])


def _from_windows(t: torch.Tensor, n: tuple[int, int], ws: tuple[int, int], dilated: bool) -> torch.Tensor:
    """Inverse of :func:`_to_windows`."""
    C = t.shape[1]
    t = t.reshape(-1, n[0], n[1], C, ws[0], ws[1])
    t = t.permute(0, 3, 4, 1, 5, 2) if dilated else t.permute(0, 3, 1, 4, 2, 5)
    return t.reshape(-1, C, n[0] * ws[0], n[1] * ws[1])


class SpanningWindowAttention(nn.Module):
    """Window MHSA over close and/or remote (dilated) partitions with shared q/k and v projections.

    ``partitions`` selects the authors' operators: ``("remote", "close")`` is ``EW_MHSA_Hybrid``
    (EMOv2's SEW-MHSA, operator 3), ``("remote",)`` ``EW_MHSA_Remote`` (1), ``("close",)``
    ``EW_MHSA_Close`` (2). q/k have ``dim_head`` channels per head; v has ``dim_out // num_heads``.
    ``window_size <= 0`` attends over the whole map. The map is zero-padded (bottom/right) to a
    multiple of the window and the padded positions take part in attention, as in the authors' code.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        dim_head: int = 64,
        window_size: int = 7,
        partitions: Sequence[str] = ("remote", "close"),
        act_layer: str = "relu",
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        v_group: bool = False,
        attn_pre: bool = False,
    ) -> None:
        super().__init__()
        if dim % dim_head:
            raise ValueError(f"EMOv2 attention: dim {dim} is not a multiple of dim_head {dim_head}")
        self.num_heads = dim // dim_head
        self.dim_head = dim_head
        self.scale = dim_head ** -0.5
        self.window_size = window_size
        self.partitions = tuple(partitions)
        self.attn_pre = attn_pre
        self.fused_attn = use_fused_attn()
        self.qk = ConvNormAct(dim, dim * 2, 1, bias=qkv_bias, norm_layer="none", act_layer="none")
        self.v = ConvNormAct(dim, dim_out, 1, groups=self.num_heads if v_group else 1, bias=qkv_bias,
                             norm_layer="none", act_layer=act_layer)
        self.attn_drop = nn.Dropout(attn_drop)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        # (Bw, heads*d, L) -> (Bw, heads, L, d)
        return t.reshape(t.shape[0], self.num_heads, -1, t.shape[-1]).transpose(-1, -2)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.fused_attn:
            return F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0, scale=self.scale)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = self.attn_drop(attn.softmax(dim=-1))
        return attn @ v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        ws = (H, W) if self.window_size <= 0 else (self.window_size, self.window_size)
        pad_b, pad_r = (-H) % ws[0], (-W) % ws[1]
        x = F.pad(x, (0, pad_r, 0, pad_b))
        n = ((H + pad_b) // ws[0], (W + pad_r) // ws[1])

        qk = self.qk(x)
        values = x if self.attn_pre else self.v(x)
        # Both partitions go through one batched attention call: (P*B*n1*n2, heads, L, d).
        dilated = [p == "remote" for p in self.partitions]
        qk_w = torch.cat([_to_windows(qk, n, ws, d) for d in dilated])
        q, k = qk_w.reshape(qk_w.shape[0], 2, -1, qk_w.shape[-1]).unbind(1)  # channel order (qk, heads, d)
        v = torch.cat([_to_windows(values, n, ws, d) for d in dilated])
        out = self._attend(self._heads(q), self._heads(k), self._heads(v))
        out = out.transpose(-1, -2).reshape(v.shape)

        # The authors' attn_pre branch of the hybrid operator folds the close result back with the
        # remote layout too; kept so that their attn_pre=True checkpoints compute the same function.
        fold = [True] * len(dilated) if (self.attn_pre and len(dilated) > 1) else dilated
        chunks = out.chunk(len(dilated), dim=0)
        y = _from_windows(chunks[0], n, ws, fold[0])
        for chunk, d in zip(chunks[1:], fold[1:]):
            y = y + _from_windows(chunk, n, ws, d)
        if self.attn_pre:
            y = self.v(y)
        if pad_r or pad_b:
            y = y[:, :, :H, :W].contiguous()
        return y


_OPS = {1: ("remote",), 2: ("close",), 3: ("remote", "close")}


class I2RMB(nn.Module):
    """Improved Inverted Residual Mobile Block (the authors' ``iiRMB``).

    ``ops`` lists the authors' expansion operators, summed: 0 = conv expansion (``conv_ks`` x
    ``conv_ks``, ``conv_groups``) + act; 1/2/3 = remote/close/spanning window attention whose
    value projection is the expansion.
    """

    def __init__(
        self,
        dim: int,
        dim_out: int,
        exp_ratio: float = 1.0,
        has_skip: bool = True,
        stride: int = 1,
        norm_layer: str = "bn_2d",
        act_layer: str = "relu",
        dw_ks: int = 3,
        dim_head: int = 64,
        window_size: int = 7,
        ops: Sequence[int] = (0,),
        conv_ks: int = 1,
        conv_groups: int = 1,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        drop_path: float = 0.0,
        v_group: bool = False,
        attn_pre: bool = False,
        ls_init_value: float = 1e-6,
    ) -> None:
        super().__init__()
        dim_mid = int(dim * exp_ratio)
        self.has_skip = has_skip and dim == dim_out and stride == 1
        self.norm = _norm_layer(norm_layer)(dim)
        eops = []
        for op in ops:
            if op == 0:
                eops.append(ConvNormAct(dim, dim_mid, conv_ks, groups=conv_groups, bias=qkv_bias,
                                        norm_layer="none", act_layer=act_layer))
            elif op in _OPS:
                eops.append(SpanningWindowAttention(
                    dim, dim_mid, dim_head=dim_head, window_size=window_size, partitions=_OPS[op],
                    act_layer=act_layer, qkv_bias=qkv_bias, attn_drop=attn_drop, v_group=v_group,
                    attn_pre=attn_pre))
            else:  # the authors' code silently skips unknown operator ids
                continue
        self.eops = nn.ModuleList(eops)
        # The local depthwise conv always uses BN + SiLU (not the stage's norm/act).
        self.conv_local = (ConvNormAct(dim_mid, dim_mid, dw_ks, stride=stride, groups=dim_mid,
                                       norm_layer="bn_2d", act_layer="silu") if dw_ks > 0 else nn.Identity())
        self.proj_drop = nn.Dropout(proj_drop)
        self.proj = ConvNormAct(dim_mid, dim_out, 1, norm_layer="none", act_layer="none")
        self.ls = LayerScale2d(dim_out, ls_init_value) if ls_init_value > 0 else nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm(x)
        outs = [op(x) for op in self.eops]
        x = outs[0]
        for o in outs[1:]:
            x = x + o
        x_local = self.conv_local(x)
        x = x + x_local if self.has_skip else x_local
        x = self.proj(self.proj_drop(x))
        x = self.ls(x)
        return shortcut + self.drop_path(x) if self.has_skip else x


def _per_stage(value: Any, n: int) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


class EMOv2(nn.Module):
    """EMOv2 backbone + classifier. Arguments follow the authors' ``EMO2`` constructor (defaults too);
    per-stage lists: ``depths``, ``embed_dims``, ``exp_ratios``, ``norm_layers``, ``act_layers``,
    ``dw_kss``, ``dim_heads``, ``window_sizes``, ``stage_ops`` (the authors' ``hybrid_eopss``),
    ``conv_kss``, ``conv_groups``."""

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        depths: Sequence[int] = (1, 2, 4, 2),
        embed_dims: Sequence[int] = (64, 128, 256, 512),
        exp_ratios: Sequence[float] = (4.0, 4.0, 4.0, 4.0),
        norm_layers: Sequence[str] = ("bn_2d", "bn_2d", "ln_2d", "ln_2d"),
        act_layers: Sequence[str] = ("silu", "silu", "gelu", "gelu"),
        dw_kss: Sequence[int] = (3, 3, 5, 5),
        dim_heads: Sequence[int] = (32, 32, 32, 32),
        window_sizes: Sequence[int] = (7, 7, 7, 7),
        stage_ops: Sequence[Sequence[int]] = ((0,), (0,), (1,), (1,)),
        conv_kss: Sequence[int] = (1, 1, 1, 1),
        conv_groups: Sequence[int] = (1, 1, 1, 1),
        qkv_bias: bool = True,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        drop_rate: float = 0.0,
        v_group: bool = False,
        attn_pre: bool = False,
        ls_init_value: float = 1e-6,
    ) -> None:
        super().__init__()
        n = len(depths)
        embed_dims = list(embed_dims)
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.distilled_training = False

        stem_dim = embed_dims[0] // 2
        self.stem = nn.Sequential(
            ConvNormAct(in_chans, stem_dim, 3, stride=2, bias=True, norm_layer="bn_2d", act_layer="silu"),
            ConvNormAct(stem_dim, stem_dim, 3, groups=stem_dim, norm_layer="bn_2d", act_layer="silu"),
            ConvNormAct(stem_dim, stem_dim, 1, norm_layer="none", act_layer="none"),
        )
        # Python floats, not torch.linspace(...).item(): the model must build on the meta device.
        total = sum(depths)
        dprs = [drop_path_rate * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        norm_layers, act_layers = _per_stage(norm_layers, n), _per_stage(act_layers, n)
        dw_kss, dim_heads = _per_stage(dw_kss, n), _per_stage(dim_heads, n)
        window_sizes, exp_ratios = _per_stage(window_sizes, n), _per_stage(exp_ratios, n)
        conv_kss, conv_groups = _per_stage(conv_kss, n), _per_stage(conv_groups, n)

        prev, stages, self.feature_info = stem_dim, [], []
        for i in range(n):
            blocks = []
            for j in range(depths[i]):
                first = j == 0
                # First block of a stage: stride-2 down-sampling, doubled expansion, conv expansion
                # only (no attention), no residual; its dw kernel falls back to 5 when disabled.
                blocks.append(I2RMB(
                    prev, embed_dims[i],
                    exp_ratio=exp_ratios[i] * 2 if first else exp_ratios[i],
                    has_skip=not first,
                    stride=2 if first else 1,
                    norm_layer=norm_layers[i],
                    act_layer=act_layers[i],
                    dw_ks=(dw_kss[i] if dw_kss[i] > 0 else 5) if first else dw_kss[i],
                    dim_head=dim_heads[i],
                    window_size=window_sizes[i],
                    ops=(0,) if first else tuple(stage_ops[i]),
                    conv_ks=1 if first else conv_kss[i],
                    conv_groups=1 if first else conv_groups[i],
                    qkv_bias=qkv_bias,
                    attn_drop=attn_drop_rate,
                    proj_drop=proj_drop_rate,
                    drop_path=dprs[sum(depths[:i]) + j],
                    v_group=v_group,
                    attn_pre=attn_pre,
                    ls_init_value=ls_init_value,
                ))
                prev = embed_dims[i]
            stages.append(nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=embed_dims[i], reduction=2 ** (i + 2), module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)
        self.num_features = self.head_hidden_size = embed_dims[-1]
        # The final norm acts on the feature map before pooling (part of forward_features).
        self.norm = _norm_layer(norm_layers[-1])(self.num_features)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # As the authors: trunc-normal Linear, unit norms; convs keep PyTorch's default init.
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    # ----- timm interface -------------------------------------------------------------------
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # The authors exclude layer-scale gammas (no_weight_decay_keywords = alpha/gamma/beta).
        return {k for k, _ in self.named_parameters() if k.endswith(".gamma")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        blocks = r"^stages\.(\d+)" if coarse else [(r"^stages\.(\d+)\.(\d+)", None), (r"^norm", (99999,))]
        return dict(stem=r"^stem", blocks=blocks)

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def set_distilled_training(self, enable: bool = True) -> None:
        """While training, return ``(logits, logits_kd)`` like timm's distilled models. EMOv2 has one
        head: the authors' ``out_kd`` is the same tensor as ``out``."""
        self.distilled_training = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            if global_pool not in ("", "avg"):
                raise ValueError(f"EMOv2 supports global_pool 'avg' or '' (none), got {global_pool!r}")
            self.global_pool = global_pool
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs (strides 4, 8, 16, 32); ``norm`` applies the final norm to the last one."""
        if output_fmt != "NCHW":
            raise ValueError("EMOv2 intermediates are NCHW")
        take, max_index = feature_take_indices(len(self.stages), indices)
        last = len(self.stages) - 1
        x = self.stem(x)
        stages = self.stages if torch.jit.is_scripting() or not stop_early else self.stages[: max_index + 1]
        intermediates = []
        for i, stage in enumerate(stages):
            x = checkpoint_seq(stage, x) if self.grad_checkpointing and not torch.jit.is_scripting() else stage(x)
            if i in take:
                intermediates.append(self.norm(x) if norm and i == last else x)
        if intermediates_only:
            return intermediates
        if len(stages) - 1 == last:
            x = self.norm(x)
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        take, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        if prune_norm or max_index < len(self.feature_info) - 1:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            for stage in self.stages:
                x = checkpoint_seq(stage, x)
        else:
            x = self.stages(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.global_pool == "avg":
            x = x.mean(dim=(2, 3))
        x = self.head_drop(x)
        if pre_logits:
            return x
        x = self.head(x)
        if self.distilled_training and self.training and not torch.jit.is_scripting():
            return x, x
        return x

    def forward_distill(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The authors' two outputs ``(out, out_kd)`` in any mode (both are the same logits)."""
        x = self.forward_head(self.forward_features(x))
        return x if isinstance(x, tuple) else (x, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x))


# ----- authors' checkpoints ----------------------------------------------------------------------
def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an authors' EMOv2 state dict (``EMO2`` in ``model/lib_emo/emo2.py``) onto :class:`EMOv2`."""
    state_dict = unwrap_state_dict(state_dict)  # archzoo's order: EMA weights first
    if "stem.0.conv.weight" in state_dict:  # already archzoo's layout
        return state_dict
    out = {}
    for k, v in state_dict.items():
        k = re.sub(r"^stage0\.", "stem.", k)
        k = re.sub(r"^stage(\d+)\.", lambda m: f"stages.{int(m.group(1)) - 1}.", k)
        # The authors wrap nn.LayerNorm in a LayerNorm2d module (``.norm.norm``); timm's is a LayerNorm.
        k = re.sub(r"(^|\.)norm\.norm\.", r"\1norm.", k)
        k = re.sub(r"\.eops\.(\d+)\.net\.", r".eops.\1.", k)  # their Conv operator wraps a ConvNormAct
        if k.endswith(".ls.gamma"):
            v = v.reshape(-1)  # (1, C, 1, 1) -> timm LayerScale2d (C,)
        out[k] = v
    return out


_AUTHORS_KWARGS = {
    "dim_in": "in_chans", "hybrid_eopss": "stage_ops", "conv_groupss": "conv_groups",
    "attn_drop": "attn_drop_rate", "drop": "proj_drop_rate", "drop_path": "drop_path_rate",
    "ls_value": "ls_init_value",
}


def _from_authors_config(config: dict[str, Any]) -> dict[str, Any]:
    """The authors' ``EMO2(**config)`` keyword arguments -> :class:`EMOv2` keyword arguments."""
    kwargs = {}
    for k, v in config.items():
        if k == "img_size":  # only used by the authors for an unused feature-size variable
            continue
        kwargs[_AUTHORS_KWARGS.get(k, k)] = v
    return kwargs


def _reference_forward(model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, out_kd = model.forward_distill(inputs[""])
    return {"__output__.out": out, "__output__.out_kd": out_kd}


@register_reference("emo2", forward=_reference_forward)
def _reference_emo2(config: dict, meta: dict) -> nn.Module:
    return EMOv2(**_from_authors_config(config))


# ----- registered variants -----------------------------------------------------------------------
def _cfg(url: str = "", **kwargs: Any) -> dict[str, Any]:
    return {
        "url": url, "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "stem.0.conv", "classifier": "head",  # the authors state no license
        "paper_ids": "arXiv:2412.06674", "origin_url": "https://github.com/zhangzjn/EMOv2", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "emo2_1m.in1k": _cfg(),
    "emo2_2m.in1k": _cfg(),
    "emo2_5m.in1k": _cfg(),
    "emo2_5m_512.in1k": _cfg(input_size=(3, 512, 512), pool_size=(16, 16)),
    "emo2_20m.in1k": _cfg(),
    "emo2_50m.in1k": _cfg(),
})

# The authors' EMO2_*_k5_hybrid builders: k5 = 5x5 depthwise convs, hybrid = operator 3 (spanning
# attention) in stages 3-4. Common to all: BN/SiLU in stages 1-2, LN/GELU in stages 3-4.
_COMMON = dict(
    norm_layers=("bn_2d", "bn_2d", "ln_2d", "ln_2d"), act_layers=("silu", "silu", "gelu", "gelu"),
    dw_kss=(5, 5, 5, 5), window_sizes=(7, 7, 7, 7), stage_ops=((0,), (0,), (3,), (3,)),
    conv_kss=(1, 1, 1, 1), conv_groups=(1, 1, 1, 1), qkv_bias=True, ls_init_value=1e-6,
)
_ARCHS = {
    "emo2_1m": dict(depths=(2, 2, 8, 3), embed_dims=(32, 48, 80, 180), exp_ratios=(2.0, 2.5, 3.0, 3.5),
                    dim_heads=(16, 16, 20, 20), drop_path_rate=0.04036),
    "emo2_2m": dict(depths=(3, 3, 9, 3), embed_dims=(32, 48, 120, 200), exp_ratios=(2.0, 2.5, 3.0, 3.5),
                    dim_heads=(16, 16, 20, 20), drop_path_rate=0.05),
    "emo2_5m": dict(depths=(3, 3, 9, 3), embed_dims=(48, 72, 160, 288), exp_ratios=(2.0, 3.0, 4.0, 4.0),
                    dim_heads=(16, 24, 32, 32), drop_path_rate=0.05),
    "emo2_20m": dict(depths=(3, 3, 13, 3), embed_dims=(64, 128, 320, 448), exp_ratios=(2.0, 3.0, 4.0, 4.0),
                     dim_heads=(16, 32, 32, 32), drop_path_rate=0.1),
    "emo2_50m": dict(depths=(5, 8, 20, 7), embed_dims=(64, 128, 384, 512), exp_ratios=(2.0, 3.0, 4.0, 4.0),
                     dim_heads=(16, 32, 32, 32), drop_path_rate=0.2),
}


def _create_emo2(variant: str, arch: str, pretrained: bool = False, **kwargs: Any) -> EMOv2:
    model_args = {**_COMMON, **_ARCHS[arch], **kwargs}
    out_indices = model_args.pop("out_indices", (0, 1, 2, 3))
    return build_model_with_cfg(
        EMOv2, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=out_indices, feature_cls="getter"),
        **model_args,
    )


@register_model
def emo2_1m(pretrained: bool = False, **kwargs: Any) -> EMOv2:
    """EMOv2-1M (authors' ``EMO2_1M_k5_hybrid``), 224x224."""
    return _create_emo2("emo2_1m", "emo2_1m", pretrained, **kwargs)


@register_model
def emo2_2m(pretrained: bool = False, **kwargs: Any) -> EMOv2:
    """EMOv2-2M (authors' ``EMO2_2M_k5_hybrid``), 224x224."""
    return _create_emo2("emo2_2m", "emo2_2m", pretrained, **kwargs)


@register_model
def emo2_5m(pretrained: bool = False, **kwargs: Any) -> EMOv2:
    """EMOv2-5M (authors' ``EMO2_5M_k5_hybrid``), 224x224."""
    return _create_emo2("emo2_5m", "emo2_5m", pretrained, **kwargs)


@register_model
def emo2_5m_512(pretrained: bool = False, **kwargs: Any) -> EMOv2:
    """EMOv2-5M at 512x512 (authors' ``EMO2_5M_k5_hybrid_512``): 8x8 windows divide the 32/16 maps."""
    return _create_emo2("emo2_5m_512", "emo2_5m", pretrained, **{"window_sizes": (8, 8, 8, 8), **kwargs})


@register_model
def emo2_20m(pretrained: bool = False, **kwargs: Any) -> EMOv2:
    """EMOv2-20M (authors' ``EMO2_20M_k5_hybrid``), 224x224."""
    return _create_emo2("emo2_20m", "emo2_20m", pretrained, **kwargs)


@register_model
def emo2_50m(pretrained: bool = False, **kwargs: Any) -> EMOv2:
    """EMOv2-50M (authors' ``EMO2_50M_k5_hybrid``), 224x224."""
    return _create_emo2("emo2_50m", "emo2_50m", pretrained, **kwargs)
