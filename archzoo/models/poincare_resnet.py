"""Poincaré ResNet: a residual network that runs entirely in the Poincaré ball (van Spengler, Berkhout
and Mettes, "Poincaré ResNet", ICCV 2023, arXiv 2303.14027).

Authors' code: https://github.com/maxvanspengler/poincare-resnet (``models/resnets/hyperbolic.py``,
``models/nn/modules/``, ``models/manifolds/``), followed at commit fbbbbf8; key names are the authors'
(their state dicts load as they are). The ball operations and their manual backward passes live in
:mod:`archzoo.models._poincare_ops`.

Between layers, activations are tangent vectors at the origin: every Poincaré layer maps its input
onto the ball (``expmap0``) and its output back (``logmap0``). The parts:
- Poincaré convolution: the input is scaled by the beta-function ratio
  B(C_in k^2 / 2, 1/2) / B(C_in / 2, 1/2) (concatenating k^2 receptive-field vectors), unfolded,
  mapped onto the ball, and sent through a Poincaré fully-connected layer (HNN++ MLR distances ->
  sinh map -> ball); weights ``weights`` of shape (k^2 C_in, C_out) in unfold order;
- Poincaré midpoint batch normalisation: the batch midpoint over all pixels and the Fréchet variance
  re-centre and re-scale the batch by parallel transport to a learned mean with a learned variance.
  As in the authors' code it always uses the statistics of the current batch (also in eval); the
  ``running_*`` buffers exist for their checkpoints but are never used;
- residual connections by Möbius addition (``"fr"``: f(x) (+) x);
- identity-based initialisation: every weight matrix is 0.5 * I (0.5 cancels the 2 inside the
  distance formula), biases zero;
- head: global average pooling of the tangent map, then a Poincaré linear layer whose output (logits)
  is again a tangent vector.

Quirks of the authors' code, kept so that their checkpoints compute the same function (each has a
switch; see the paper card):
- the MLR conformal factor is computed as ``2 * (1 - c|x|^2)``, not the formula's ``2 / (1 - c|x|^2)``
  (``mlr_lambda``);
- the residual Möbius addition, and its exp/log maps, treat the last axis of the NCHW map (the width)
  as the vector dimension, not the channels (``skip_dim=-1``; the paper's form is ``skip_dim=1``);
- each block's skip-connection ball is not a registered module: its curvature is not in the state
  dict, stays the float32 number init_c (also in float64 models) and is never trained;
- balls shared by several layers appear under several state-dict keys (the same parameter).
Generalised here: the head pools globally (the authors' AvgPool2d(8) + squeeze needs a 32x32 input and
a batch larger than one); convolution output sizes use the standard formula.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from timm.layers import SelectAdaptivePool2d
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.models import _poincare_ops as P
from archzoo.reference import register_reference

__all__ = [
    "PoincareBall", "PoincareConv2d", "PoincareLinear", "PoincareBatchNorm", "PoincareBatchNorm2d",
    "PoincareResidualBlock", "PoincareResNet", "checkpoint_filter_fn", "parse_authors_name",
]


def _beta(a: float, b: float) -> float:
    return math.exp(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))


class PoincareBall(nn.Module):
    """The Poincaré ball with curvature ``c`` held as the parameter ``isp_c`` (float32 like the authors;
    ``requires_grad=learnable``). ``softplus``: c = softplus(isp_c) (the authors do this for learnable
    balls and in their autograd-only ball class), else c = isp_c."""

    def __init__(self, c: float = 0.1, learnable: bool = False, softplus: bool | None = None,
                 manual_backward: bool = True) -> None:
        super().__init__()
        self.isp_c = nn.Parameter(torch.full((), float(c), dtype=torch.float32), requires_grad=learnable)
        self.softplus = learnable if softplus is None else softplus
        self.manual_backward = manual_backward

    @property
    def c(self) -> torch.Tensor:
        return F.softplus(self.isp_c) if self.softplus else self.isp_c

    def expmap0(self, v: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return P.expmap0(v, self.c, dim, self.manual_backward)

    def logmap0(self, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return P.logmap0(y, self.c, dim, self.manual_backward)

    def expmap(self, x: torch.Tensor, v: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return P.expmap(x, v, self.c, dim, self.manual_backward)

    def logmap(self, x: torch.Tensor, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return P.logmap(x, y, self.c, dim, self.manual_backward)

    def mobius_add(self, x: torch.Tensor, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return P.mobius_add(x, y, self.c, dim, self.manual_backward)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor, dim: int = -1) -> torch.Tensor:
        return P.transp(x, y, v, self.c, dim, self.manual_backward)

    def extra_repr(self) -> str:
        return f"softplus={self.softplus}, manual_backward={self.manual_backward}"


class _FixedBall:
    """The residual ball of a block: the authors keep it in a plain dict, so it is no module, its
    curvature is not in the state dict, is never trained and stays a float32 number."""

    def __init__(self, c: float, softplus: bool, manual_backward: bool) -> None:
        self.c32 = float(np.float32(c))
        self.softplus, self.manual_backward = softplus, manual_backward

    def c(self, device: torch.device) -> torch.Tensor:
        c = torch.full((), self.c32, dtype=torch.float32, device=device)
        return F.softplus(c) if self.softplus else c


class PoincareLinear(nn.Module):
    """Poincaré fully-connected layer on tangent vectors: expmap0 -> Poincaré FC -> logmap0 (last dim)."""

    def __init__(self, in_features: int, out_features: int, ball: PoincareBall, bias: bool = True,
                 id_init: bool = True, mlr_lambda: str = "authors") -> None:
        super().__init__()
        self.in_features, self.out_features, self.id_init, self.mlr_lambda = in_features, out_features, id_init, mlr_lambda
        self.ball = ball
        self.z = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        _init_weight(self.z, self.id_init, 2 * self.in_features * self.out_features)
        if self.bias is not None:
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ball = self.ball
        x = ball.expmap0(x, dim=-1)
        y = P.fully_connected(x, self.z, self.bias, ball.c, ball.manual_backward, self.mlr_lambda)
        return ball.logmap0(y, dim=-1)


@torch.no_grad()
def _init_weight(w: torch.Tensor, id_init: bool, fan: int) -> None:
    if id_init:  # the paper's identity-based initialisation (0.5 counters the 2 of the distance)
        w.copy_(0.5 * torch.eye(w.shape[0], w.shape[1], dtype=w.dtype, device=w.device))
    else:  # the authors' alternative (HNN++-style normal)
        nn.init.normal_(w, mean=0.0, std=fan ** -0.5)


class PoincareConv2d(nn.Module):
    """Poincaré 2-D convolution on tangent maps (B, C, H, W): beta-ratio scaling, unfold, expmap0 over
    each receptive field, Poincaré FC, logmap0 over the channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ball: PoincareBall, stride: int = 1,
                 padding: int = 0, bias: bool = True, id_init: bool = True, mlr_lambda: str = "authors") -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.id_init, self.mlr_lambda = id_init, mlr_lambda
        self.ball = ball
        k2 = kernel_size * kernel_size
        self.weights = nn.Parameter(torch.empty(k2 * in_channels, out_channels))  # unfold (channel-major) order
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # B(C_in k^2/2, 1/2) / B(C_in/2, 1/2): rescales a tangent vector so that concatenating k^2 of them
        # keeps the expected norm (the paper's Poincaré concatenation)
        self.beta_n = _beta(in_channels * k2 / 2, 0.5)
        self.beta_ni = _beta(in_channels / 2, 0.5)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        _init_weight(self.weights, self.id_init, 2 * self.in_channels * self.kernel_size ** 2 * self.out_channels)
        if self.bias is not None:
            self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        k, s, p = self.kernel_size, self.stride, self.padding
        oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
        x = x * self.beta_n / self.beta_ni
        x = F.unfold(x, (k, k), padding=p, stride=s).transpose(1, 2)  # (B, L, C_in k^2)
        ball = self.ball
        x = ball.expmap0(x, dim=-1)
        x = P.fully_connected(x, self.weights, self.bias, ball.c, ball.manual_backward, self.mlr_lambda)
        x = x.transpose(1, 2).reshape(B, self.out_channels, oh, ow)
        return ball.logmap0(x, dim=1)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class PoincareBatchNorm(nn.Module):
    """Poincaré batch normalisation of tangent vectors (N, C) with the batch's Poincaré midpoint and
    Fréchet variance (always the current batch); learned ``mean`` (a tangent vector) and ``var``."""

    def __init__(self, features: int, ball: PoincareBall, use_midpoint: bool = True) -> None:
        super().__init__()
        if not use_midpoint:
            raise NotImplementedError("only the paper's midpoint batch norm is implemented (no iterative Fréchet mean)")
        self.features = features
        self.ball = ball
        self.mean = nn.Parameter(torch.zeros(features))
        self.var = nn.Parameter(torch.ones(()))
        # in the authors' checkpoints, never read or updated
        self.register_buffer("running_mean", torch.zeros(1, features))
        self.register_buffer("running_var", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ball = self.ball
        c, manual = ball.c, ball.manual_backward
        x = ball.expmap0(x, dim=-1)
        mean_on_ball = ball.expmap0(self.mean, dim=-1)
        batch_mean = P.poincare_midpoint(x, c, vec_dim=-1, batch_dim=0)
        batch_var = P.frechet_variance(x, batch_mean, c, dim=-1, manual=manual)
        v = ball.transp(batch_mean, mean_on_ball, ball.logmap(batch_mean, x))
        v = (self.var / (batch_var + 1e-6)).sqrt() * v
        return ball.logmap0(ball.expmap(mean_on_ball.unsqueeze(-2), v), dim=-1)


class PoincareBatchNorm2d(nn.Module):
    """:class:`PoincareBatchNorm` over all pixels of a (B, C, H, W) tangent map (key ``norm`` as the authors)."""

    def __init__(self, features: int, ball: PoincareBall, use_midpoint: bool = True) -> None:
        super().__init__()
        self.features = features
        self.ball = ball
        self.norm = PoincareBatchNorm(features, ball, use_midpoint)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        x = self.norm(x.permute(0, 2, 3, 1).flatten(0, 2))
        return x.reshape(B, H, W, self.features).permute(0, 3, 1, 2)


class PoincareResidualBlock(nn.Module):
    """Poincaré conv3x3 -> midpoint BN -> act -> conv3x3 -> BN, Möbius-added to the (downsampled) input,
    then act. The two BNs share one ball; each conv has its own."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, act_layer: Callable[[], nn.Module] | None = nn.ReLU,
                 downsample: nn.Module | None = None, init_c: float = 0.1, learnable: bool = False,
                 softplus: bool | None = None, manual_backward: bool = True, skip_connection: str = "fr",
                 skip_dim: int = -1, mlr_lambda: str = "authors") -> None:
        super().__init__()
        if skip_connection not in ("fr", "rf"):
            raise ValueError(f"skip_connection must be 'fr' or 'rf', got {skip_connection!r}")
        self.skip_connection, self.skip_dim = skip_connection, skip_dim
        ball = lambda: PoincareBall(init_c, learnable, softplus, manual_backward)  # noqa: E731
        ball1, ball2, bn_ball = ball(), ball(), ball()
        self.conv1 = PoincareConv2d(in_channels, out_channels, 3, ball1, stride, 1, mlr_lambda=mlr_lambda)
        self.bn1 = PoincareBatchNorm2d(out_channels, bn_ball)
        self.act1 = act_layer() if act_layer is not None else nn.Identity()
        self.conv2 = PoincareConv2d(out_channels, out_channels, 3, ball2, 1, 1, mlr_lambda=mlr_lambda)
        self.bn2 = PoincareBatchNorm2d(out_channels, bn_ball)
        self.act2 = act_layer() if act_layer is not None else nn.Identity()
        self.downsample = downsample
        self.skip_ball = _FixedBall(init_c, learnable if softplus is None else softplus, manual_backward)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x
        x = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        if self.downsample is not None:
            residual = self.downsample(residual)
        c, manual, dim = self.skip_ball.c(x.device), self.skip_ball.manual_backward, self.skip_dim
        x = P.expmap0(x, c, dim, manual)
        residual = P.expmap0(residual, c, dim, manual)
        if self.skip_connection == "fr":
            x = P.mobius_add(x, residual, c, dim, manual)
        else:
            x = P.mobius_add(residual, x, c, dim, manual)
        return self.act2(P.logmap0(x, c, dim, manual))


class PoincareResNet(nn.Module):
    """Poincaré ResNet for 32x32 images (CIFAR layout: a stem conv, three groups with strides 1, 2, 2),
    the authors' ``HyperbolicResNet``, with timm's interface.

    Args:
        channel_dims, depths: widths and blocks of the three groups (resnet-N: depths 3 x (N - 2) / 6).
        init_c: initial curvature of every ball; learnable: train the curvatures (softplus-parameterised).
        manual_backward: the paper's hand-derived backward passes (False: plain autograd, same values).
        skip_connection: "fr" (f(x) (+) x) or "rf"; skip_dim: vector axis of the residual Möbius
            addition (-1 = the width axis, as the authors' code; 1 = channels, as the paper describes).
        mlr_lambda: "authors" (2 (1 - c|x|^2), their code) or "paper" (2 / (1 - c|x|^2)).
        curvature_softplus: c = softplus(isp_c) for every ball; default: when learnable (the authors'
            ``custom_autograd=False`` ball class always does it; their reference adapter passes it).
    """

    def __init__(
            self,
            channel_dims: Sequence[int] = (8, 16, 32),
            depths: Sequence[int] = (3, 3, 3),
            num_classes: int = 10,
            in_chans: int = 3,
            act_layer: Callable[[], nn.Module] | None = nn.ReLU,
            init_c: float = 0.1,
            learnable: bool = False,
            manual_backward: bool = True,
            skip_connection: str = "fr",
            skip_dim: int = -1,
            mlr_lambda: str = "authors",
            bn_midpoint: bool = True,
            curvature_softplus: bool | None = None,
            global_pool: str = "avg",
    ) -> None:
        super().__init__()
        if len(channel_dims) != 3 or len(depths) != 3:
            raise ValueError("Poincaré ResNet has three groups: give three channel_dims and three depths")
        if not bn_midpoint:
            raise NotImplementedError("only the paper's midpoint batch norm is implemented (bn_midpoint=True)")
        self.num_classes, self.in_chans = num_classes, in_chans
        self.channel_dims, self.depths = list(channel_dims), list(depths)
        self.grad_checkpointing = False
        bk = dict(init_c=init_c, learnable=learnable, softplus=curvature_softplus, manual_backward=manual_backward)
        ball = lambda: PoincareBall(init_c, learnable, curvature_softplus, manual_backward)  # noqa: E731
        block_kw = dict(act_layer=act_layer, skip_connection=skip_connection, skip_dim=skip_dim, mlr_lambda=mlr_lambda, **bk)
        self.conv_ball, self.bn_ball, self.linear_ball = ball(), ball(), ball()
        c0, c1, c2 = self.channel_dims
        self.conv = PoincareConv2d(in_chans, c0, 3, self.conv_ball, 1, 1, mlr_lambda=mlr_lambda)
        self.bn = PoincareBatchNorm2d(c0, self.bn_ball)
        self.act = act_layer() if act_layer is not None else nn.Identity()
        groups = []
        for i, (cin, cout, depth, stride) in enumerate(zip((c0, c0, c1), (c0, c1, c2), self.depths, (1, 2, 2))):
            down = None
            if stride != 1:
                down = PoincareConv2d(cin, cout, 1, ball(), stride, 0, mlr_lambda=mlr_lambda)
            blocks = [PoincareResidualBlock(cin, cout, stride, downsample=down, **block_kw)]
            blocks += [PoincareResidualBlock(cout, cout, 1, **block_kw) for _ in range(1, depth)]
            groups.append(nn.Sequential(*blocks))
        self.group1, self.group2, self.group3 = groups
        self.feature_info = [dict(num_chs=c0, reduction=1, module="act")] + [
            dict(num_chs=c, reduction=r, module=f"group{i + 1}") for i, (c, r) in enumerate(zip(self.channel_dims, (1, 2, 4)))]
        self.num_features = self.head_hidden_size = c2
        self.mlr_lambda = mlr_lambda
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = PoincareLinear(c2, num_classes, self.linear_ball, mlr_lambda=mlr_lambda) if num_classes > 0 else nn.Identity()

    # ---- timm interface
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Curvatures, BN means/variances (the authors apply their optimizer's decay to everything)."""
        return {n for n, _ in self.named_parameters() if n.endswith(("isp_c", "norm.mean", "norm.var"))}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^(conv|bn|conv_ball|bn_ball)\b", blocks=r"^group(\d+)" if coarse else r"^group(\d+)\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new identity-initialised Poincaré head on the model's ``linear_ball``."""
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        p = self.linear_ball.isp_c
        fc = nn.Identity()
        if num_classes > 0:
            fc = PoincareLinear(self.num_features, num_classes, self.linear_ball, mlr_lambda=self.mlr_lambda)
        self.fc = fc.to(device=p.device, dtype=self.conv.weights.dtype)

    def _stages(self) -> list[nn.Module]:
        return [nn.Sequential(self.conv, self.bn, self.act), self.group1, self.group2, self.group3]

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Tangent maps after the stem and after each group (see ``feature_info``)."""
        if output_fmt != "NCHW":
            raise ValueError("Output shape must be NCHW.")
        take, max_index = feature_take_indices(4, indices)
        stages = self._stages()
        out = []
        for i, stage in enumerate(stages[: max_index + 1] if stop_early or intermediates_only else stages):
            x = stage(x)
            if i in take:
                out.append(x)
        if intermediates_only:
            return out
        return x, out

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(4, indices)
        for i in range(max_index + 1, 4):
            setattr(self, f"group{i}", nn.Identity())
        if prune_head:
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(x)))
        groups = nn.Sequential(self.group1, self.group2, self.group3)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(groups, x)
        return groups(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The authors' keys are this module's; only unwrap ``state_dict``/``model`` and ``module.``."""
    return unwrap_state_dict(state_dict, wrapper_keys=("state_dict", "model"))


def parse_authors_name(name: str) -> tuple[list[int], list[int]]:
    """``hyperbolic-8-16-32-resnet-20`` -> (channel_dims [8, 16, 32], depths [3, 3, 3])."""
    m = re.fullmatch(r"(?:hyperbolic-)?(\d+)-(\d+)-(\d+)-resnet-(\d+)", name)
    if m is None:
        raise ValueError(f"not an authors' model name: {name!r} (expected hyperbolic-C1-C2-C3-resnet-N)")
    return [int(m.group(i)) for i in (1, 2, 3)], 3 * [(int(m.group(4)) - 2) // 6]


@register_reference("poincare_resnet")
def _reference_poincare_resnet(config: dict, meta: dict) -> nn.Module:
    # the authors' HyperbolicResNet(classes, channel_dims, depths, act_layer=ReLU, init_c=0.1,
    # custom_autograd=True, learnable=False, skip_connection="fr", bn_midpoint=True)
    custom = config.get("custom_autograd", True)
    learnable = config.get("learnable", False)
    return PoincareResNet(
        channel_dims=config["channel_dims"], depths=config["depths"], num_classes=config["classes"],
        init_c=config.get("init_c", 0.1), learnable=learnable, manual_backward=custom,
        skip_connection=config.get("skip_connection", "fr"), bn_midpoint=config.get("bn_midpoint", True),
        curvature_softplus=learnable or not custom,
    )


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> PoincareResNet:
    return build_model_with_cfg(
        PoincareResNet, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2, 3)), **kwargs)


def _cfg(**kwargs: Any) -> dict[str, Any]:
    # the authors' CIFAR transform: ToTensor, Normalize(0.5, 0.5)
    return {
        "url": "", "num_classes": 10, "input_size": (3, 32, 32), "pool_size": (8, 8), "crop_pct": 1.0,
        "interpolation": "bilinear", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
        "first_conv": "conv", "classifier": "fc", "paper_ids": "arXiv:2303.14027",
        "origin_url": "https://github.com/maxvanspengler/poincare-resnet", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "poincare_resnet20_8_16_32.untrained": _cfg(),
    "poincare_resnet32_8_16_32.untrained": _cfg(),
    "poincare_resnet20_16_32_64.untrained": _cfg(),
    "poincare_resnet20_32_64_128.untrained": _cfg(),
})


def _named(authors_name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    dims, depths = parse_authors_name(authors_name)
    return {**kwargs, "channel_dims": dims, "depths": depths}


@register_model
def poincare_resnet20_8_16_32(pretrained: bool = False, **kwargs: Any) -> PoincareResNet:
    """The authors' ``hyperbolic-8-16-32-resnet-20`` (68,789 params with 10 classes)."""
    return _create("poincare_resnet20_8_16_32", pretrained, **_named("hyperbolic-8-16-32-resnet-20", kwargs))


@register_model
def poincare_resnet32_8_16_32(pretrained: bool = False, **kwargs: Any) -> PoincareResNet:
    """The authors' ``hyperbolic-8-16-32-resnet-32`` (117,651 params with 10 classes)."""
    return _create("poincare_resnet32_8_16_32", pretrained, **_named("hyperbolic-8-16-32-resnet-32", kwargs))


@register_model
def poincare_resnet20_16_32_64(pretrained: bool = False, **kwargs: Any) -> PoincareResNet:
    """The authors' ``hyperbolic-16-32-64-resnet-20`` (272,429 params with 10 classes)."""
    return _create("poincare_resnet20_16_32_64", pretrained, **_named("hyperbolic-16-32-64-resnet-20", kwargs))


@register_model
def poincare_resnet20_32_64_128(pretrained: bool = False, **kwargs: Any) -> PoincareResNet:
    """The authors' ``hyperbolic-32-64-128-resnet-20`` (1,084,445 params with 10 classes)."""
    return _create("poincare_resnet20_32_64_128", pretrained, **_named("hyperbolic-32-64-128-resnet-20", kwargs))
