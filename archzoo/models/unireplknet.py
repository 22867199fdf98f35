"""UniRepLKNet: a large-kernel ConvNet with exact structural re-parameterisation.

Papers:
  * Ding et al., "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point
    Cloud, Time-Series and Image Recognition", CVPR 2024, arXiv:2311.15599 (collection P16);
  * Zhang, Ding, Yue, "Scaling Up Your Kernels: Large Kernel Design in ConvNets towards Universal
    Representations", TPAMI, arXiv:2410.08049 (journal extension, collection P11).
Authors' code: https://github.com/AILab-CVC/UniRepLKNet (``unireplknet.py``).

The network is ConvNeXt-like: a two-conv stem, four stages separated by stride-2 3x3 convs with
channels-first LayerNorm, and blocks of ``depthwise conv -> BN -> SE -> Linear -> GELU -> GRN ->
Linear -> BN -> layer scale`` with a residual. Blocks with a kernel >= 7 use the *Dilated Reparam
Block*: a large depthwise kernel plus parallel dilated small depthwise kernels, each with its own BN.

Two structures, the authors' key names in both:
  * training form (``deploy=False``): every branch and BatchNorm present;
  * deploy form (``deploy=True``): one depthwise conv with bias per block, no BN, GRN without bias,
    the second Linear with bias and no layer scale.
``UniRepLKNet.reparameterize()`` (and each block's ``reparameterize()``, the hook timm's
``reparameterize_model`` calls) converts the first into the second exactly, in any floating dtype
(the authors' conversion only runs in float32) and on the meta device.

Also here: thin front ends for the other modalities the paper uses (audio spectrograms as a
1-channel image, time series embedded and reshaped into a 2-D map, video frames reshaped into one
large image), each around the same backbone.
"""
from __future__ import annotations

import math
import re
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, LayerNorm2d, trunc_normal_
from timm.models import register_model
from timm.models._builder import build_model_with_cfg
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs

from archzoo.reference import register_reference

__all__ = [
    "UniRepLKNet",
    "UniRepLKNetBlock",
    "DilatedReparamBlock",
    "GRN",
    "SEBlock",
    "checkpoint_filter_fn",
    "default_kernel_sizes",
    "UniRepLKNetAudio",
    "UniRepLKNetTimeSeries",
    "UniRepLKNetVideo",
]

# (kernel, dilation) of the parallel dilated branches for each large kernel size, as in the
# authors' DilatedReparamBlock ("default settings, not tuned carefully" per their comment).
DILATED_BRANCHES: dict[int, Tuple[Tuple[int, int], ...]] = {
    17: ((5, 1), (9, 2), (3, 4), (3, 5), (3, 7)),
    15: ((5, 1), (7, 2), (3, 3), (3, 5), (3, 7)),
    13: ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5)),
    11: ((5, 1), (5, 2), (3, 3), (3, 4), (3, 5)),
    9: ((5, 1), (5, 2), (3, 3), (3, 4)),
    7: ((5, 1), (3, 2), (3, 3)),
    5: ((3, 1), (3, 2)),
}


def default_kernel_sizes(depths: Sequence[int]) -> Tuple[Tuple[int, ...], ...]:
    """The authors' per-block kernel sizes for their four depth settings: 3 in stage 1, 13 in
    stages 2 and 4; stage 3 all 13 (A/F/P/N), alternating 13/3 (T) or 13/3/3 (S/B/L/XL)."""
    depths = tuple(int(d) for d in depths)
    stage3 = {
        (2, 2, 6, 2): (13,) * 6,
        (2, 2, 8, 2): (13,) * 8,
        (3, 3, 18, 3): (13, 3) * 9,
        (3, 3, 27, 3): (13, 3, 3) * 9,
    }
    if depths not in stage3:
        raise ValueError(
            f"no default kernel sizes for depths {depths}; pass kernel_sizes (one tuple per stage, "
            "e.g. ((3, 3), (13, 13), (13,) * 6, (13, 13)))"
        )
    return ((3,) * depths[0], (13,) * depths[1], stage3[depths], (13,) * depths[3])


# ----------------------------------------------------------------------------------------------
# small layers (own modules so that parameter names match the authors' checkpoints)
# ----------------------------------------------------------------------------------------------
class ToChannelsLast(nn.Module):
    """NCHW -> NHWC (index 0 of the authors' ``pwconv1`` Sequential)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class ToChannelsFirst(nn.Module):
    """NHWC -> NCHW (index 1 of the authors' ``pwconv2`` Sequential)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


class GRN(nn.Module):
    """Global Response Normalization (ConvNeXt V2) on NHWC input, parameters shaped (1, 1, 1, C)
    and named ``gamma``/``beta`` as in the authors' checkpoints (timm's GlobalResponseNorm names
    them weight/bias). The deploy form has no ``beta``: it is folded into the next Linear."""

    def __init__(self, dim: int, use_bias: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim)) if use_bias else None

    @property
    def use_bias(self) -> bool:
        return self.beta is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gx = torch.linalg.vector_norm(x, ord=2, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + self.eps)
        out = (self.gamma * nx + 1) * x
        return out + self.beta if self.beta is not None else out


class SEBlock(nn.Module):
    """Squeeze-and-excitation with 1x1 convs named ``down``/``up`` (authors' keys), ReLU, sigmoid."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(channels, hidden, 1, bias=True)
        self.up = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = torch.sigmoid(self.up(F.relu(self.down(s))))
        return x * s


# ----------------------------------------------------------------------------------------------
# re-parameterisation helpers (pure tensor maths: any dtype, any device including meta)
# ----------------------------------------------------------------------------------------------
def _bn_affine(bn: nn.Module, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as y = x * scale + shift; an Identity (a BN that a generic Conv-BN fuser
    already folded away) gives scale 1, shift 0. ``like``: a (C,)-shaped tensor for dtype/device."""
    if not isinstance(bn, nn.modules.batchnorm._BatchNorm):
        return torch.ones_like(like), torch.zeros_like(like)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def dilate_kernel(kernel: torch.Tensor, dilation: int) -> torch.Tensor:
    """The non-dilated kernel equivalent to ``kernel`` applied with ``dilation``: zeros inserted
    between taps, size r*(k-1)+1. (The authors use conv_transpose2d with a float32 identity kernel,
    which fails in float64; zero insertion is the same map in every dtype.)"""
    if dilation == 1:
        return kernel
    kh, kw = kernel.shape[-2:]
    out = kernel.new_zeros(*kernel.shape[:-2], dilation * (kh - 1) + 1, dilation * (kw - 1) + 1)
    out[..., ::dilation, ::dilation] = kernel
    return out


def _depthwise_conv(weight: torch.Tensor, bias: torch.Tensor) -> nn.Conv2d:
    """A depthwise conv holding the given (fused) weight and bias; built on meta so that no
    throw-away initialisation runs, then the tensors are adopted."""
    c, k = weight.shape[0], weight.shape[-1]
    conv = nn.Conv2d(c, c, k, padding=k // 2, groups=c, bias=True, device="meta")
    conv.weight = nn.Parameter(weight.detach().clone())
    conv.bias = nn.Parameter(bias.detach().clone())
    return conv


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    lin = nn.Linear(weight.shape[1], weight.shape[0], bias=True, device="meta")
    lin.weight = nn.Parameter(weight.detach().clone())
    lin.bias = nn.Parameter(bias.detach().clone())
    return lin


# ----------------------------------------------------------------------------------------------
# blocks
# ----------------------------------------------------------------------------------------------
class DilatedReparamBlock(nn.Module):
    """Large depthwise kernel (``lk_origin`` + ``origin_bn``) plus parallel dilated depthwise
    branches (``dil_conv_k{k}_{r}`` + ``dil_bn_k{k}_{r}``), summed. ``reparameterize()`` merges them
    into ``lk_origin`` with a bias (dilated kernel -> zero-inserted kernel, padded to the large size)."""

    def __init__(self, channels: int, kernel_size: int, deploy: bool = False) -> None:
        super().__init__()
        if kernel_size not in DILATED_BRANCHES:
            raise ValueError(
                f"Dilated Reparam Block supports kernel sizes {sorted(DILATED_BRANCHES)}, got {kernel_size}"
            )
        self.kernel_size = kernel_size
        self.branches = DILATED_BRANCHES[kernel_size]
        self.lk_origin = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2,
                                   groups=channels, bias=deploy)
        self.fused = deploy
        if not deploy:
            self.origin_bn = nn.BatchNorm2d(channels)
            for k, r in self.branches:
                pad = (r * (k - 1) + 1) // 2
                setattr(self, f"dil_conv_k{k}_{r}",
                        nn.Conv2d(channels, channels, k, padding=pad, dilation=r, groups=channels, bias=False))
                setattr(self, f"dil_bn_k{k}_{r}", nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return self.lk_origin(x)
        out = self.origin_bn(self.lk_origin(x))
        for k, r in self.branches:
            out = out + getattr(self, f"dil_bn_k{k}_{r}")(getattr(self, f"dil_conv_k{k}_{r}")(x))
        return out

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Merge every branch and BatchNorm into one biased large-kernel conv (idempotent)."""
        if self.fused:
            return
        lk = self.lk_origin
        per_channel = lk.weight[:, 0, 0, 0]
        scale, shift = _bn_affine(self.origin_bn, per_channel)
        weight = lk.weight * scale.view(-1, 1, 1, 1)
        bias = shift if lk.bias is None else lk.bias * scale + shift
        for k, r in self.branches:
            conv, bn = getattr(self, f"dil_conv_k{k}_{r}"), getattr(self, f"dil_bn_k{k}_{r}")
            s, t = _bn_affine(bn, per_channel)
            w = dilate_kernel(conv.weight, r) * s.view(-1, 1, 1, 1)
            pad = (self.kernel_size - w.shape[-1]) // 2
            weight = weight + F.pad(w, [pad] * 4)
            bias = bias + t if conv.bias is None else bias + conv.bias * s + t
            delattr(self, f"dil_conv_k{k}_{r}")
            delattr(self, f"dil_bn_k{k}_{r}")
        del self.origin_bn
        self.lk_origin = _depthwise_conv(weight, bias)
        self.fused = True

    merge_dilated_branches = reparameterize  # the authors' name


class UniRepLKNetBlock(nn.Module):
    """One UniRepLKNet block. ``kernel_size`` >= 7: Dilated Reparam Block; 3 or 5: plain depthwise
    conv; 0: no spatial mixing (as the authors allow)."""

    def __init__(
        self,
        dim: int,
        kernel_size: int,
        drop_path: float = 0.0,
        layer_scale_init_value: Optional[float] = 1e-6,
        deploy: bool = False,
        ffn_factor: float = 4,
    ) -> None:
        super().__init__()
        if kernel_size == 0:
            self.dwconv: nn.Module = nn.Identity()
        elif kernel_size >= 7:
            self.dwconv = DilatedReparamBlock(dim, kernel_size, deploy=deploy)
        elif kernel_size in (3, 5):
            self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, bias=deploy)
        else:
            raise ValueError(
                f"block kernel size must be 0, 3, 5 or one of {sorted(DILATED_BRANCHES)}, got {kernel_size}"
            )
        self.norm: nn.Module = nn.Identity() if (deploy or kernel_size == 0) else nn.BatchNorm2d(dim)
        self.se = SEBlock(dim, dim // 4)
        ffn_dim = int(ffn_factor * dim)
        self.pwconv1 = nn.Sequential(ToChannelsLast(), nn.Linear(dim, ffn_dim))
        self.act = nn.Sequential(nn.GELU(), GRN(ffn_dim, use_bias=not deploy))
        if deploy:
            self.pwconv2 = nn.Sequential(nn.Linear(ffn_dim, dim), ToChannelsFirst())
        else:
            self.pwconv2 = nn.Sequential(nn.Linear(ffn_dim, dim, bias=False), ToChannelsFirst(), nn.BatchNorm2d(dim))
        if not deploy and layer_scale_init_value:
            self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))
        else:
            self.register_parameter("gamma", None)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.se(self.norm(self.dwconv(x)))
        y = self.pwconv2(self.act(self.pwconv1(y)))
        if self.gamma is not None:
            y = y * self.gamma.view(1, -1, 1, 1)
        return x + self.drop_path(y)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the dilated branches, both BatchNorms, the GRN bias and the layer scale into the
        depthwise conv and the second Linear, giving the authors' deploy structure (idempotent)."""
        if isinstance(self.dwconv, DilatedReparamBlock):
            self.dwconv.reparameterize()
        if isinstance(self.norm, nn.BatchNorm2d):
            conv = self.dwconv.lk_origin if isinstance(self.dwconv, DilatedReparamBlock) else self.dwconv
            scale, shift = _bn_affine(self.norm, conv.weight[:, 0, 0, 0])
            weight = conv.weight * scale.view(-1, 1, 1, 1)
            bias = shift if conv.bias is None else conv.bias * scale + shift
            fused = _depthwise_conv(weight, bias)
            if isinstance(self.dwconv, DilatedReparamBlock):
                self.dwconv.lk_origin = fused
            else:
                self.dwconv = fused
            self.norm = nn.Identity()
        grn: GRN = self.act[1]
        has_bn = len(self.pwconv2) == 3
        if grn.beta is None and not has_bn and self.gamma is None:
            return
        linear: nn.Linear = self.pwconv2[0]
        weight = linear.weight
        bias = linear.weight.new_zeros(linear.out_features) if linear.bias is None else linear.bias
        if grn.beta is not None:  # Linear(u + beta) = Linear(u) + W @ beta
            bias = bias + weight @ grn.beta.reshape(-1)
            grn.beta = None
        if has_bn:
            scale, shift = _bn_affine(self.pwconv2[2], bias)
            weight, bias = weight * scale[:, None], bias * scale + shift
        if self.gamma is not None:
            weight, bias = weight * self.gamma[:, None], bias * self.gamma
            self.gamma = None
        self.pwconv2 = nn.Sequential(_linear(weight, bias), ToChannelsFirst())


# ----------------------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------------------
class UniRepLKNet(nn.Module):
    """UniRepLKNet with timm's interface. Keys follow the authors' checkpoints: ``downsample_layers``
    (0 = stem), ``stages``, ``norm`` (LayerNorm on pooled features) and ``head``."""

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        depths: Sequence[int] = (3, 3, 27, 3),
        dims: Sequence[int] = (96, 192, 384, 768),
        kernel_sizes: Optional[Sequence[Sequence[int]]] = None,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        layer_scale_init_value: Optional[float] = 1e-6,
        head_init_scale: float = 1.0,
        deploy: bool = False,
        ffn_factor: float = 4,
    ) -> None:
        super().__init__()
        depths, dims = tuple(int(d) for d in depths), tuple(int(d) for d in dims)
        if len(depths) != 4 or len(dims) != 4:
            raise ValueError(f"UniRepLKNet has four stages: got depths {depths}, dims {dims}")
        if kernel_sizes is None:
            kernel_sizes = default_kernel_sizes(depths)
        kernel_sizes = tuple(tuple(int(k) for k in ks) for ks in kernel_sizes)
        for i in range(4):
            if len(kernel_sizes[i]) != depths[i]:
                raise ValueError(f"stage {i}: {len(kernel_sizes[i])} kernel sizes for {depths[i]} blocks")
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        # kept to rebuild the training form when a training checkpoint meets a deploy model
        self._init_kwargs: dict[str, Any] = dict(
            in_chans=in_chans, num_classes=num_classes, global_pool=global_pool, depths=depths, dims=dims,
            kernel_sizes=kernel_sizes, layer_scale_init_value=layer_scale_init_value, ffn_factor=ffn_factor,
        )
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.deploy = deploy
        self.kernel_sizes = kernel_sizes
        self.num_features = self.head_hidden_size = dims[-1]
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        self.downsample_layers = nn.ModuleList()
        self.downsample_layers.append(nn.Sequential(
            nn.Conv2d(in_chans, dims[0] // 2, kernel_size=3, stride=2, padding=1),
            LayerNorm2d(dims[0] // 2, eps=1e-6),
            nn.GELU(),
            nn.Conv2d(dims[0] // 2, dims[0], kernel_size=3, stride=2, padding=1),
            LayerNorm2d(dims[0], eps=1e-6),
        ))
        for i in range(3):
            self.downsample_layers.append(nn.Sequential(
                nn.Conv2d(dims[i], dims[i + 1], kernel_size=3, stride=2, padding=1),
                LayerNorm2d(dims[i + 1], eps=1e-6),
            ))

        total = sum(depths)
        # plain Python (no tensor .item()) so that the model builds on the meta device
        dpr = [drop_path_rate * j / (total - 1) if total > 1 else 0.0 for j in range(total)]
        self.stages = nn.ModuleList()
        self.feature_info = []
        cur = 0
        for i in range(4):
            self.stages.append(nn.Sequential(*[
                UniRepLKNetBlock(dims[i], kernel_sizes[i][j], drop_path=dpr[cur + j],
                                 layer_scale_init_value=layer_scale_init_value, deploy=deploy,
                                 ffn_factor=ffn_factor)
                for j in range(depths[i])
            ]))
            cur += depths[i]
            self.feature_info.append(dict(num_chs=dims[i], reduction=4 * 2 ** i, module=f"stages.{i}"))

        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()

        self.apply(self._init_weights)
        if isinstance(self.head, nn.Linear) and not self.head.weight.is_meta:
            self.head.weight.data.mul_(head_init_scale)
            self.head.bias.data.mul_(head_init_scale)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if m.weight.is_meta:  # nothing to initialise; timm's trunc_normal_ is slow on meta
                return
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    # --- timm interface ---------------------------------------------------------------------
    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        # The authors decay every >1-D tensor, the GRN gamma/beta (shaped (1,1,1,C)) included.
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(
            stem=r"^downsample_layers\.0",
            blocks=r"^stages\.(\d+)" if coarse else [
                (r"^downsample_layers\.(\d+)", (0,)),
                (r"^stages\.(\d+)\.(\d+)", None),
                (r"^norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stage outputs (NCHW). ``norm`` is accepted for timm compatibility; the final norm acts on
        pooled features, so intermediates are returned un-normalised."""
        if output_fmt != "NCHW":
            raise ValueError("UniRepLKNet intermediates are NCHW only")
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        intermediates = []
        last = max_index if stop_early else len(self.stages) - 1
        for i in range(last + 1):
            x = self.stages[i](self.downsample_layers[i](x))
            if i in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: Union[int, List[int]] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        self.stages = self.stages[: max_index + 1]
        self.downsample_layers = self.downsample_layers[: max_index + 1]
        if max_index < 3 or prune_norm:
            self.norm = nn.Identity()
        if max_index < 3:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or max_index < 3:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for ds, stage in zip(self.downsample_layers, self.stages):
            x = ds(x)
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(stage, x)
            else:
                x = stage(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = self.norm(x.mean((2, 3)))
            x = self.head_drop(x)
            return x if pre_logits else self.head(x)
        # no pooling: the LayerNorm and head act per position (channels last)
        x = self.head_drop(self.norm(x.permute(0, 2, 3, 1)))
        if not pre_logits:
            x = self.head(x)
        return x.permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    # --- re-parameterisation ------------------------------------------------------------------
    @torch.no_grad()
    def reparameterize(self) -> "UniRepLKNet":
        """Convert in place to the deploy structure (authors' ``reparameterize_unireplknet``); the
        output is unchanged up to floating-point rounding. Returns ``self``; idempotent."""
        for m in list(self.modules()):
            if isinstance(m, UniRepLKNetBlock):
                m.reparameterize()
        self.deploy = True
        return self

    reparameterize_unireplknet = reparameterize  # the authors' name


# ----------------------------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------------------------
_TRAINING_ONLY_KEY = re.compile(
    r"^stages\.\d+\.\d+\.(gamma|act\.1\.beta|pwconv2\.2\.running_var|dwconv\.origin_bn\.running_var)$"
)


def _is_training_form(state_dict: dict) -> bool:
    """True if the state dict holds any tensor that only the training structure has (layer scale,
    GRN bias, the BN after the second Linear, a Dilated Reparam Block's BN)."""
    return any(_TRAINING_ONLY_KEY.match(k) for k in state_dict)


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an ``AILab-CVC/UniRepLKNet`` checkpoint onto ``model``.

    Their keys are ours already; this unwraps ``{'model': ...}``, strips ``module.``/``backbone.``
    prefixes, drops the per-stage ``norm0..3`` of their detection/segmentation backbones, and, when a
    training-form checkpoint (all the authors released) meets a ``deploy=True`` model, fuses it on
    the fly through the exact re-parameterisation (on the meta device too, for key/shape checks).
    """
    for wrapper in ("model", "state_dict", "model_ema"):
        if wrapper in state_dict and isinstance(state_dict[wrapper], dict):
            state_dict = state_dict[wrapper]
            break
    out = {}
    for k, v in state_dict.items():
        for prefix in ("module.", "backbone."):
            if k.startswith(prefix):
                k = k[len(prefix):]
        if k.split(".")[0] in ("norm0", "norm1", "norm2", "norm3"):
            continue
        out[k] = v
    target = model
    if not isinstance(target, UniRepLKNet):  # adapters wrap the backbone
        target = getattr(model, "backbone", model)
    if isinstance(target, UniRepLKNet) and target.deploy and _is_training_form(out):
        out = _fuse_training_state_dict(out, target)
    return out


def _fuse_training_state_dict(state_dict: dict[str, torch.Tensor], model: UniRepLKNet) -> dict[str, torch.Tensor]:
    """Training-form weights -> deploy-form weights, through a training-form twin of ``model``."""
    kwargs = dict(model._init_kwargs)
    head_w = state_dict.get("head.weight")
    kwargs["num_classes"] = int(head_w.shape[0]) if head_w is not None else 0
    with torch.device("meta"):
        twin = UniRepLKNet(**kwargs, deploy=False)
    # assign=True adopts the checkpoint's tensors (real or meta) instead of copying into meta ones
    twin.load_state_dict(state_dict, strict=True, assign=True)
    twin.reparameterize()
    return dict(twin.state_dict())


# ----------------------------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------------------------
def _cfg(filename: str = "", **kwargs: Any) -> dict:
    return {
        "hf_hub_id": "DingXiaoH/UniRepLKNet" if filename else None,
        "hf_hub_filename": filename or None,
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "downsample_layers.0.0", "classifier": "head",
        "license": "apache-2.0", "paper_ids": "arXiv:2311.15599",
        "origin_url": "https://github.com/AILab-CVC/UniRepLKNet",
        **kwargs,
    }


_384 = dict(input_size=(3, 384, 384), pool_size=(12, 12), crop_pct=1.0)
_192 = dict(input_size=(3, 192, 192), pool_size=(6, 6))  # L/XL were pre-trained on 22K at 192 px
_22K = dict(num_classes=21841)
default_cfgs = generate_default_cfgs({
    "unireplknet_a.in1k": _cfg("unireplknet_a_in1k_224_acc77.03.pth"),
    "unireplknet_f.in1k": _cfg("unireplknet_f_in1k_224_acc78.58.pth"),
    "unireplknet_p.in1k": _cfg("unireplknet_p_in1k_224_acc80.23.pth"),
    "unireplknet_n.in1k": _cfg("unireplknet_n_in1k_224_acc81.64.pth"),
    "unireplknet_t.in1k": _cfg("unireplknet_t_in1k_224_acc83.21.pth"),
    "unireplknet_s.in1k": _cfg("unireplknet_s_in1k_224_acc83.91.pth"),
    "unireplknet_s.in22k_ft_in1k_384": _cfg("unireplknet_s_in22k_to_in1k_384_acc86.44.pth", **_384),
    "unireplknet_s.in22k": _cfg("unireplknet_s_in22k_pretrain.pth", **_22K),
    # the first tag of a model is its default: the 1k fine-tuned weights (1000-class head)
    "unireplknet_b.in22k_ft_in1k_384": _cfg("unireplknet_b_in22k_to_in1k_384_acc87.40.pth", **_384),
    "unireplknet_b.in22k": _cfg("unireplknet_b_in22k_pretrain.pth", **_22K),
    "unireplknet_l.in22k_ft_in1k_384": _cfg("unireplknet_l_in22k_to_in1k_384_acc87.88.pth", **_384),
    "unireplknet_l.in22k": _cfg("unireplknet_l_in22k_pretrain.pth", **_192, **_22K),
    "unireplknet_xl.in22k_ft_in1k_384": _cfg("unireplknet_xl_in22k_to_in1k_384_acc87.96.pth", **_384),
    "unireplknet_xl.in22k": _cfg("unireplknet_xl_in22k_pretrain.pth", **_192, **_22K),
})


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    return build_model_with_cfg(
        UniRepLKNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), feature_cls="getter"),
        **kwargs,
    )


_AFP = (2, 2, 6, 2)
_N = (2, 2, 8, 2)
_T = (3, 3, 18, 3)
_SBLXL = (3, 3, 27, 3)


@register_model
def unireplknet_a(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-A (4.4M deploy params)."""
    return _create("unireplknet_a", pretrained, **dict(dict(depths=_AFP, dims=(40, 80, 160, 320)), **kwargs))


@register_model
def unireplknet_f(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-F."""
    return _create("unireplknet_f", pretrained, **dict(dict(depths=_AFP, dims=(48, 96, 192, 384)), **kwargs))


@register_model
def unireplknet_p(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-P."""
    return _create("unireplknet_p", pretrained, **dict(dict(depths=_AFP, dims=(64, 128, 256, 512)), **kwargs))


@register_model
def unireplknet_n(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-N."""
    return _create("unireplknet_n", pretrained, **dict(dict(depths=_N, dims=(80, 160, 320, 640)), **kwargs))


@register_model
def unireplknet_t(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-T."""
    return _create("unireplknet_t", pretrained, **dict(dict(depths=_T, dims=(80, 160, 320, 640)), **kwargs))


@register_model
def unireplknet_s(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-S."""
    return _create("unireplknet_s", pretrained, **dict(dict(depths=_SBLXL, dims=(96, 192, 384, 768)), **kwargs))


@register_model
def unireplknet_b(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-B."""
    return _create("unireplknet_b", pretrained, **dict(dict(depths=_SBLXL, dims=(128, 256, 512, 1024)), **kwargs))


@register_model
def unireplknet_l(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-L."""
    return _create("unireplknet_l", pretrained, **dict(dict(depths=_SBLXL, dims=(192, 384, 768, 1536)), **kwargs))


@register_model
def unireplknet_xl(pretrained: bool = False, **kwargs: Any) -> UniRepLKNet:
    """UniRepLKNet-XL."""
    return _create("unireplknet_xl", pretrained, **dict(dict(depths=_SBLXL, dims=(256, 512, 1024, 2048)), **kwargs))


# ----------------------------------------------------------------------------------------------
# reference vectors (shared/reference/unireplknet_*.safetensors)
# ----------------------------------------------------------------------------------------------
def _model_from_authors_config(config: dict) -> UniRepLKNet:
    """The authors' constructor kwargs -> our model. Their implementation switches
    (attempt_use_lk_impl, use_sync_bn, with_cp, init_cfg) change no arithmetic in eval mode."""
    ks = config.get("kernel_sizes")
    ls = config.get("layer_scale_init_value", 1e-6)
    return UniRepLKNet(
        in_chans=int(config.get("in_chans", 3)),
        num_classes=int(config.get("num_classes", 1000)),
        depths=tuple(config.get("depths", (3, 3, 27, 3))),
        dims=tuple(config.get("dims", (96, 192, 384, 768))),
        kernel_sizes=None if ks is None else tuple(tuple(s) for s in ks),
        drop_path_rate=float(config.get("drop_path_rate", 0.0)),
        layer_scale_init_value=ls,
        head_init_scale=float(config.get("head_init_scale", 1.0)),
        deploy=bool(config.get("deploy", False)),
    )


@register_reference("unireplknet")
def _reference_unireplknet(config: dict, meta: dict) -> nn.Module:
    return _model_from_authors_config(dict(config, deploy=False))


@register_reference("unireplknet_deploy")
def _reference_unireplknet_deploy(config: dict, meta: dict) -> nn.Module:
    return _model_from_authors_config(dict(config, deploy=True))


# ----------------------------------------------------------------------------------------------
# other modalities: thin front ends around the same backbone
# ----------------------------------------------------------------------------------------------
def _backbone(variant: Optional[str], in_chans: int, num_classes: int, **kwargs: Any) -> UniRepLKNet:
    if variant is None:
        return UniRepLKNet(in_chans=in_chans, num_classes=num_classes, **kwargs)
    import timm

    return timm.create_model(variant, in_chans=in_chans, num_classes=num_classes, **kwargs)


class _Adapter(nn.Module):
    backbone: UniRepLKNet

    @torch.no_grad()
    def reparameterize(self) -> "_Adapter":
        self.backbone.reparameterize()
        return self


class UniRepLKNetAudio(_Adapter):
    """Audio classification: the spectrogram is a 1-channel image (the paper follows AST's
    preprocessing; the authors' code feeds ``x.unsqueeze(1).transpose(2, 3)`` to a UniRepLKNet with
    ``in_chans=1``). Input: (B, T, F) frames x mel bins; output: (B, num_classes).

    ``variant`` names the backbone (timm name, e.g. ``unireplknet_s`` as the authors use); ``None``
    builds ``UniRepLKNet(**kwargs)`` directly (custom widths)."""

    def __init__(self, num_classes: int = 35, variant: Optional[str] = "unireplknet_s", **kwargs: Any) -> None:
        super().__init__()
        self.backbone = _backbone(variant, 1, num_classes, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3:
            from archzoo.validation import InputError

            raise InputError(f"UniRepLKNetAudio expects a (batch, frames, mel bins) spectrogram, got {tuple(x.shape)}")
        return self.backbone(x.unsqueeze(1).transpose(2, 3))


class UniRepLKNetTimeSeries(_Adapter):
    """Time-series forecasting as the paper describes it: each time step is embedded into
    ``embed_dim`` features and the (seq_len x embed_dim) sequence is reshaped into a 1-channel
    2-D map (the authors: 48 steps x 768 = a 192x192 map) for the backbone; here the backbone's
    linear head predicts the horizon directly (the authors feed the encoder output to Corrformer's
    decoder, which is not part of UniRepLKNet). Series are instance-normalised and de-normalised as
    in the authors' pipeline. Input (B, seq_len, num_vars) -> output (B, pred_len, num_vars);
    fold several stations/nodes into the batch, as the authors do."""

    def __init__(
        self,
        seq_len: int,
        num_vars: int,
        pred_len: int,
        embed_dim: int = 768,
        map_size: Optional[Tuple[int, int]] = None,
        variant: Optional[str] = "unireplknet_s",
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if map_size is None:
            side = math.isqrt(seq_len * embed_dim)
            if side * side != seq_len * embed_dim:
                raise ValueError(
                    f"seq_len*embed_dim = {seq_len * embed_dim} is not a square; "
                    "pass map_size=(H, W) with H*W equal to it"
                )
            map_size = (side, side)
        if map_size[0] * map_size[1] != seq_len * embed_dim:
            raise ValueError(f"map_size {map_size} does not hold seq_len*embed_dim = {seq_len * embed_dim} values")
        self.seq_len, self.num_vars, self.pred_len, self.map_size = seq_len, num_vars, pred_len, tuple(map_size)
        self.embed = nn.Linear(num_vars, embed_dim)
        self.backbone = _backbone(variant, 1, pred_len * num_vars, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.seq_len or x.shape[2] != self.num_vars:
            from archzoo.validation import InputError

            raise InputError(
                f"UniRepLKNetTimeSeries expects (batch, {self.seq_len}, {self.num_vars}), got {tuple(x.shape)}"
            )
        mean = x.mean(1, keepdim=True).detach()
        std = torch.sqrt(x.var(1, keepdim=True, unbiased=False) + 1e-5).detach()
        z = self.embed((x - mean) / std)  # (B, L, D)
        z = z.reshape(x.shape[0], 1, *self.map_size)
        y = self.backbone(z).view(x.shape[0], self.pred_len, self.num_vars)
        return y * std + mean


class UniRepLKNetVideo(_Adapter):
    """Video recognition as in the authors' code: the (B, C, T, H, W) clip is reshaped (a plain
    memory reshape, no special arrangement) into one (B, C, sqrt(T)*H, sqrt(T)*W) image, e.g. 16
    frames -> a 4x-larger image. Input (B, C, T, H, W); output (B, num_classes)."""

    def __init__(self, num_classes: int = 400, num_frames: int = 16, in_chans: int = 3,
                 variant: Optional[str] = "unireplknet_b", **kwargs: Any) -> None:
        super().__init__()
        g = math.isqrt(num_frames)
        if g * g != num_frames:
            raise ValueError(f"num_frames must be a perfect square (16 in the paper), got {num_frames}")
        self.num_frames, self.grid = num_frames, g
        self.backbone = _backbone(variant, in_chans, num_classes, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != self.num_frames:
            from archzoo.validation import InputError

            raise InputError(
                f"UniRepLKNetVideo expects (batch, channels, {self.num_frames}, H, W), got {tuple(x.shape)}"
            )
        b, c, _, h, w = x.shape
        return self.backbone(x.reshape(b, c, self.grid * h, self.grid * w))
