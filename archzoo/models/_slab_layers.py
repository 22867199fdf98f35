"""Layers shared by the SLAB backbones (Guo et al., "SLAB: Efficient Transformers with Simplified Linear
Attention and Progressive Re-parameterized Batch Normalization", arXiv 2405.11582).

Authors' code: https://github.com/xinghaochen/SLAB (``classification/models/prepbn.py`` and the
``SimplifiedLinearAttention`` classes of ``slab_{swin,deit,pvt,cswin}.py``).

- :class:`RepBN`: BatchNorm over the channels of a token sequence plus a learnable ``alpha * x``.
- :class:`PRepBN` (the authors' ``LinearNorm``): progressive replacement of LayerNorm by RepBN.
  Training: LayerNorm only for ``warm`` forward calls, then ``lam * LN(x) + (1 - lam) * RepBN(x)``
  with ``lam = r0 * iter / total_step`` read *before* ``iter`` is decremented, so ``lam`` falls
  linearly from ``r0`` to 0 over ``step`` forward calls and stays 0 (RepBN only). The schedule lives
  in int64 buffers (``warm``, ``iter``, ``total_step``), so a checkpoint resumes it. Eval: RepBN only.
- :func:`linear_attention`: the simplified linear attention core (ReLU kernel, row normalisation,
  the cheaper of the two matrix-product orders).
- Deploy helpers: an eval-mode RepBN is a per-channel affine map ``x * a + b``; the fold helpers
  merge it into the Linear or convolution next to it (the fusion the authors did not ship for the
  SLAB models).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "RepBN", "PRepBN", "TokenAffine", "prepbn", "linear_attention", "heads_split", "heads_merge",
    "norm_affine", "fold_into_linear", "fold_into_conv_output", "fold_into_conv_input", "prepbn_modules",
    "set_prepbn_schedule", "SlabHead", "SlabModelMixin", "finalize_cfg",
]


class RepBN(nn.Module):
    """BatchNorm1d over the channels of ``(B, N, C)`` tokens plus ``alpha * x`` (alpha starts at 1)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))
        self.bn = nn.BatchNorm1d(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BatchNorm1d wants channels second: (B, N, C) -> (B, C, N); statistics over B*N tokens
        x = x.transpose(1, 2)
        return (self.bn(x) + self.alpha * x).transpose(1, 2)

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode ``(scale, shift)`` with ``RepBN(x) == x * scale + shift`` per channel."""
        bn = self.bn
        inv_std = torch.rsqrt(bn.running_var + bn.eps)
        gamma = bn.weight if bn.weight is not None else torch.ones_like(inv_std)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(inv_std)
        scale = gamma * inv_std + self.alpha
        shift = beta - gamma * bn.running_mean * inv_std
        return scale, shift


class PRepBN(nn.Module):
    """Progressive re-parameterised BatchNorm (the authors' ``LinearNorm``; keys ``norm1`` = LayerNorm,
    ``norm2`` = RepBN, int64 buffers ``warm``/``iter``/``total_step``).

    Args:
        dim: channels.
        step: forward calls over which ``lam`` decays linearly from ``r0`` to 0.
        warm: forward calls of LayerNorm only before the decay starts.
        r0: initial weight of the LayerNorm.
        ln_eps: LayerNorm epsilon (1e-5 in SLAB-Swin/CSWin, 1e-6 in SLAB-DeiT/PVT).
    """

    def __init__(self, dim: int, step: int = 300000, warm: int = 0, r0: float = 1.0, ln_eps: float = 1e-5) -> None:
        super().__init__()
        if step <= 0:
            raise ValueError(f"PRepBN needs step > 0 forward calls, got {step}")
        if warm < 0:
            raise ValueError(f"PRepBN needs warm >= 0, got {warm}")
        self.register_buffer("warm", torch.tensor(int(warm), dtype=torch.long))
        self.register_buffer("iter", torch.tensor(int(step), dtype=torch.long))
        self.register_buffer("total_step", torch.tensor(int(step), dtype=torch.long))
        self.r0 = r0
        self.norm1 = nn.LayerNorm(dim, eps=ln_eps)
        self.norm2 = RepBN(dim)

    @property
    def lam(self) -> float:
        """The LayerNorm weight the next training forward uses (1 during warm-up)."""
        if int(self.warm) > 0:
            return 1.0
        return self.r0 * int(self.iter) / int(self.total_step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.norm2(x)
        # the schedule advances once per training forward call, as in the authors' code
        if bool(self.warm > 0):
            self.warm.sub_(1)
            return self.norm1(x)
        # read before the decrement; a 0-dim tensor in the default dtype, exactly as the authors'
        lam = self.r0 * self.iter / self.total_step
        self.iter.sub_((self.iter > 0).to(self.iter.dtype))
        return lam * self.norm1(x) + (1.0 - lam) * self.norm2(x)

    def affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode ``(scale, shift)``: the module computes ``x * scale + shift`` in eval."""
        return self.norm2.affine()

    def extra_repr(self) -> str:
        return f"r0={self.r0}"


class TokenAffine(nn.Module):
    """``x * scale + shift`` over the last dimension: an eval-mode PRepBN with nothing to fold into."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.scale = nn.Parameter(scale.detach().clone())
        self.shift = nn.Parameter(shift.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


def prepbn(step: int, ln_eps: float = 1e-5, warm: int = 0, r0: float = 1.0) -> Callable[[int], PRepBN]:
    """``norm_layer(dim)`` factory building :class:`PRepBN` with a schedule."""

    def make(dim: int) -> PRepBN:
        return PRepBN(dim, step=step, warm=warm, r0=r0, ln_eps=ln_eps)

    return make


def prepbn_modules(model: nn.Module) -> list[PRepBN]:
    """Every PRepBN of a model, in module order."""
    return [m for m in model.modules() if isinstance(m, PRepBN)]


@torch.no_grad()
def set_prepbn_schedule(model: nn.Module, step: int | None = None, warm: int | None = None) -> None:
    """Restart every PRepBN's schedule (e.g. for fine-tuning): ``step`` decay calls after ``warm``."""
    for m in prepbn_modules(model):
        if step is not None:
            m.iter.fill_(step)
            m.total_step.fill_(step)
        if warm is not None:
            m.warm.fill_(warm)


# ---- simplified linear attention --------------------------------------------------------------------
def heads_split(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, h*c) -> (B*h, N, c), heads outermost in the channels."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads).transpose(1, 2).reshape(B * num_heads, N, C // num_heads)


def heads_merge(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B*h, N, c) -> (B, N, h*c)."""
    Bh, N, c = x.shape
    return x.reshape(Bh // num_heads, num_heads, N, c).transpose(1, 2).reshape(Bh // num_heads, N, num_heads * c)


def _linear_attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # row normaliser 1 / (q . sum_j k_j); eps as in the authors' code
    z = 1.0 / (q @ k.sum(dim=1).unsqueeze(-1) + 1e-6)
    i, j, c, d = q.shape[-2], k.shape[-2], k.shape[-1], v.shape[-1]
    if i * j * (c + d) > c * d * (i + j):  # (K^T V) first is cheaper: linear in the tokens
        x = q @ (k.transpose(-2, -1) @ v)
    else:
        x = (q @ k.transpose(-2, -1)) @ v
    return x * z


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_heads: int,
                     upcast: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Simplified linear attention: ``ReLU(q) (ReLU(k)^T v)`` normalised per query.

    ``q`` (B, N, C), ``k`` and ``v`` (B, M, C), positional encoding already added to ``k``. Returns
    the attention output and the per-head ``v``, both (B*h, ., C/h) (the callers add a depthwise conv
    of ``v``). ``upcast``: SLAB-Swin and SLAB-DeiT compute the core in float32 with autocast off
    (their ``torch.cuda.amp.autocast(enabled=False)`` block); here in at least float32, so float64
    stays float64, and the result is cast back to the input dtype outside autocast.
    """
    q, k = F.relu(q), F.relu(k)
    q, k, v = heads_split(q, num_heads), heads_split(k, num_heads), heads_split(v, num_heads)
    if not upcast:
        return _linear_attention_core(q, k, v), v
    dtype_in = v.dtype
    dtype = torch.promote_types(dtype_in, torch.float32)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    dev = q.device.type
    if dev in ("cuda", "cpu", "xpu", "mps") and torch.is_autocast_enabled(dev):
        with torch.autocast(dev, enabled=False):
            return _linear_attention_core(q, k, v), v  # float32 v feeds the conv, as the authors'
    return _linear_attention_core(q, k, v).to(dtype_in), v.to(dtype_in)


# ---- deploy: fold eval-mode PRepBN (a per-channel affine map) into neighbouring layers ---------------
def norm_affine(norm: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(scale, shift)`` of an eval-mode PRepBN / TokenAffine; None for Identity (already folded)."""
    if isinstance(norm, (PRepBN, RepBN)):
        return norm.affine()
    if isinstance(norm, TokenAffine):
        return norm.scale, norm.shift
    if isinstance(norm, nn.Identity):
        return None
    raise TypeError(f"cannot fold a {type(norm).__name__}")


@torch.no_grad()
def fold_into_linear(linear: nn.Linear, scale: torch.Tensor, shift: torch.Tensor) -> nn.Linear:
    """Linear applied to ``x * scale + shift`` -> one Linear on ``x`` (a new module, with a bias)."""
    w = linear.weight
    out = nn.Linear(linear.in_features, linear.out_features, bias=True, device=w.device, dtype=w.dtype)
    bias = linear.bias if linear.bias is not None else torch.zeros(linear.out_features, device=w.device, dtype=w.dtype)
    out.weight.copy_(w * scale.to(w.dtype))
    out.bias.copy_(bias + w @ shift.to(w.dtype))
    out.train(linear.training)
    return out


@torch.no_grad()
def fold_into_conv_output(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """``conv(x) * scale + shift`` (per output channel) -> one convolution with a bias."""
    w = conv.weight
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode,
                    device=w.device, dtype=w.dtype)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, device=w.device, dtype=w.dtype)
    out.weight.copy_(w * scale.to(w.dtype).reshape(-1, 1, 1, 1))
    out.bias.copy_(bias * scale.to(w.dtype) + shift.to(w.dtype))
    out.train(conv.training)
    return out


@torch.no_grad()
def fold_into_conv_input(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """``conv(x * scale + shift)`` (per input channel) -> one convolution. Exact only without zero
    padding (the padded border would not see the shift): PVT's patch-size = stride reduction conv."""
    if conv.groups != 1 or any(p != 0 for p in conv.padding) or conv.padding_mode != "zeros":
        raise ValueError("only an unpadded, ungrouped convolution can absorb an affine map of its input")
    w = conv.weight
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, bias=True, device=w.device, dtype=w.dtype)
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels, device=w.device, dtype=w.dtype)
    out.weight.copy_(w * scale.to(w.dtype).reshape(1, -1, 1, 1))
    out.bias.copy_(bias + w.sum(dim=(2, 3)) @ shift.to(w.dtype))
    out.train(conv.training)
    return out


class SlabHead(nn.Module):
    """Classifier head: final norm of the tokens (PRepBN or Identity), mean over tokens, Linear.

    The norm lives here (key ``head.norm``) so that the deploy walk (timm's
    ``reparameterize_model``, which visits children only) folds it into ``head.fc``.
    """

    def __init__(self, norm: nn.Module, in_features: int, num_classes: int) -> None:
        super().__init__()
        self.norm = norm
        self.in_features = in_features
        self.fc = nn.Linear(in_features, num_classes) if num_classes > 0 else nn.Identity()

    def reset(self, num_classes: int) -> None:
        w = next(iter(self.parameters()), None)
        kw = dict(device=w.device, dtype=w.dtype) if w is not None else {}
        self.fc = nn.Linear(self.in_features, num_classes, **kw) if num_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.norm(x).mean(dim=1)  # per-token norm first (LayerNorm does not commute with the mean)
        return x if pre_logits else self.fc(x)

    def reparameterize(self) -> None:
        """Fold the eval-mode final norm into the classifier (per-channel affine commutes with the mean)."""
        ab = norm_affine(self.norm)
        if ab is None:
            return
        if isinstance(self.fc, nn.Linear):
            self.fc = fold_into_linear(self.fc, *ab)
            self.norm = nn.Identity()
        else:  # no classifier (num_classes=0): keep the features as an affine map, without a norm
            self.norm = TokenAffine(*ab)


class SlabModelMixin:
    """timm's classifier interface and the deploy entry point, shared by the four SLAB backbones.

    The model defines ``self.head`` (:class:`SlabHead`), ``self.img_size`` (the fixed input size:
    positional encodings of SLA are sized for it) and ``forward_features``.
    """

    head: SlabHead
    img_size: tuple[int, int]
    num_classes: int
    global_pool: str

    @property
    def min_input_size(self) -> int:
        return max(self.img_size)

    @property
    def input_rules(self):
        from archzoo.validation import default_input_rules

        return default_input_rules(self).replace(
            min_size_reason="the size it was built for", fixed_size=tuple(self.img_size),
            fixed_size_reason="its linear-attention positional encodings are sized for that grid; create it with "
                              "img_size=H for another size")

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head.reset(num_classes)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """(B, N, C) tokens -> final norm -> mean over tokens -> classifier."""
        if self.global_pool == "":
            return self.head.norm(x)
        return self.head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @torch.no_grad()
    def reparameterize(self) -> nn.Module:
        """Deploy form in place: every eval-mode PRepBN folded into the Linear or conv next to it, so
        no LayerNorm or BatchNorm is left. Same hooks as ``timm.models.reparameterize_model`` (and
        ``archzoo.deploy``) call; idempotent; returns the model."""
        self.eval()
        for m in list(self.modules()):  # parents first: they replace their norms by Identity
            if m is not self and callable(getattr(m, "reparameterize", None)):
                m.reparameterize()
        return self

    def prepbn_lambdas(self) -> list[float]:
        """Current LayerNorm weight of every PRepBN (1 = LayerNorm only, 0 = RepBN only)."""
        return [m.lam for m in prepbn_modules(self)]


def finalize_cfg(model: nn.Module) -> nn.Module:
    """Record the model's fixed input size in its pretrained cfg (``img_size`` may differ from 224), so
    tools that build an example input (``archzoo.deploy``, benchmarks) use the size the model takes."""
    net = model if hasattr(model, "img_size") else getattr(model, "model", None)  # features_only wrapper
    if net is None or not hasattr(net, "img_size"):
        return model
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    cfg["input_size"] = (net.in_chans, *net.img_size)
    cfg["fixed_input_size"] = True
    model.pretrained_cfg = model.default_cfg = cfg
    return model
