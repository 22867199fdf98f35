"""Count FLOPs the way TensorFlow 1's profiler does (``ProfileOptionBuilder.float_operation()``).

Papers from TensorFlow codebases (MOAT's deeplab2, for one) report ``total_float_ops / batch / 2``
of the whole inference graph. That count is not PyTorch's FlopCounterMode count: besides the
2 x multiply-adds of convolutions and matrix products, TF's flops registry charges element-wise ops
(1 per output element for Add/Sub/Mul/RealDiv/BiasAdd, 2 per input element for Rsqrt, 5 for
Softmax, the input size for Mean, kernel area x output for pooling) and charges nothing for ops it
has no rule for (Erf, Sigmoid, Tanh, Relu, FusedBatchNorm, casts, reshapes, gathers, resizes). It
also counts work the graph does once, whatever the batch (constants built from variables), so the
per-image figure depends on the profiled batch size.

This module reproduces that count for a PyTorch model by counting aten ops under a dispatch mode,
with rules that map our kernels to the TF ops the authors' Keras layers emit:

- convolutions and matrix products: 2 x MACs, plus 1 per output element when a bias is added;
- ``add``/``sub``/``mul``/``div``: 1 per output element; ``mean``: the input size; ``sum``: input
  minus output size; ``softmax``: 5 per element; ``silu``: 1 (TF's swish is ``x * sigmoid(x)``);
  ``avg_pool2d``/``max_pool2d``: kernel area x output; ops on integer tensors and everything else: 0;
- modules, counted whole (the aten ops inside them are not): ``BatchNorm`` in inference 2 per element
  (Keras' non-fused ``tf.nn.batch_normalization``: ``x * inv + (offset - mean * inv)``), ``LayerNorm``
  9 per element plus 3 per normalised vector when its epsilon is below 1.001e-5 (Keras then cannot
  use the fused kernel: Mean, SquaredDifference, Mean, then 5 broadcast ops) and 2 per element
  otherwise, exact ``GELU`` 4 per element (RealDiv, AddV2, Mul, Mul; Erf is free), tanh ``GELU`` 7;
- a module may define ``tf_profiler_flops(inputs, output) -> int`` to be counted whole by its own
  rule, and ``tf_profiler_graph_flops(*inputs) -> int`` for work the authors' graph did once per
  graph (e.g. MOAT's one-hot einsum re-indexing of the relative position table).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

__all__ = ["count_tf_profiler_flops"]

_aten = torch.ops.aten
_ELEMENTWISE = {_aten.add, _aten.sub, _aten.mul, _aten.div, _aten.rsub, _aten.silu}
_BIAS_ARG = {_aten.convolution: 2, _aten._convolution: 2, _aten.addmm: 0, _aten.baddbmm: 0}


def _first(t: object) -> object:
    return (t[0] if t else None) if isinstance(t, (tuple, list)) else t


def _numel(t: object) -> int:
    t = _first(t)
    return t.numel() if isinstance(t, torch.Tensor) else 0


def _layer_norm_flops(module: nn.LayerNorm, n: int) -> int:
    if module.eps < 1.001e-5:  # Keras cannot fuse: Mean, SquaredDifference, Mean, then 5 broadcast ops
        return 9 * n + 3 * (n // max(1, math.prod(module.normalized_shape)))
    return 2 * n  # fused kernel (free), then the scale Mul and offset Add


def _whole_module_rule(module: nn.Module) -> Callable[[tuple, torch.Tensor], int] | None:
    """How TF's profiler charges ``module`` as one unit, or None when its aten ops are counted one by one."""
    own = getattr(module, "tf_profiler_flops", None)
    if callable(own):
        return own
    if isinstance(module, nn.modules.batchnorm._BatchNorm):  # inference: x * inv + (offset - mean * inv)
        return lambda inputs, out: 2 * _numel(out)
    if isinstance(module, nn.LayerNorm):
        return lambda inputs, out: _layer_norm_flops(module, _numel(out))
    if isinstance(module, nn.GELU):  # exact: RealDiv, AddV2, Mul, Mul (Erf is free); tanh: 7 ops
        per = 7 if module.approximate == "tanh" else 4
        return lambda inputs, out: per * _numel(out)
    return None


class _Counter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0
        self.suppressed = 0  # > 0 inside a module counted whole

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        first = _first(out)
        if self.suppressed or not (isinstance(first, torch.Tensor) and first.is_floating_point()):
            return out
        packet = func.overloadpacket
        if packet in flop_registry:
            self.total += int(flop_registry[packet](*args, **kwargs, out_val=out))
            bias_at = _BIAS_ARG.get(packet)
            if bias_at is not None and len(args) > bias_at and isinstance(args[bias_at], torch.Tensor):
                self.total += _numel(out)
        elif packet in _ELEMENTWISE:
            self.total += _numel(out)
        elif packet is _aten.mean:
            self.total += _numel(args[0])
        elif packet is _aten.sum:
            self.total += _numel(args[0]) - _numel(out)
        elif packet in (_aten._softmax, _aten._log_softmax):
            self.total += 5 * _numel(out)
        elif packet in (_aten.avg_pool2d, _aten.max_pool2d, _aten.max_pool2d_with_indices):
            k = args[1] if len(args) > 1 else kwargs.get("kernel_size")
            k = (k, k) if isinstance(k, int) else (tuple(k) * 2)[:2]
            self.total += k[0] * k[1] * _numel(out)
        return out


def count_tf_profiler_flops(model: nn.Module, img_size: int | tuple[int, int], in_chans: int = 3,
                            batch_size: int = 1, device: str | torch.device = "meta") -> float:
    """Per-image FLOPs of ``model`` as TF1's profiler counts them in a graph run at ``batch_size``
    (``total_float_ops / batch_size``; papers that print multiply-adds divide this by 2)."""
    hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    model = model.eval()
    counter = _Counter()
    handles = []
    # the unfused attention path, so that the scale, bias add and softmax are seen as TF's graph has them
    fused = {m: m.fused_attn for m in model.modules() if isinstance(getattr(m, "fused_attn", None), bool)}
    for m in fused:
        m.fused_attn = False

    def enter(module, inputs):
        counter.suppressed += 1

    def leave_with(rule):
        def leave(module, inputs, output):
            counter.suppressed -= 1
            if not counter.suppressed:
                counter.total += int(rule(inputs, output))
        return leave

    def per_graph(module, inputs):
        counter.total += int(module.tf_profiler_graph_flops(*inputs))

    try:
        for m in model.modules():
            rule = _whole_module_rule(m)
            if rule is not None:
                handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave_with(rule))]
            if callable(getattr(m, "tf_profiler_graph_flops", None)):
                handles.append(m.register_forward_pre_hook(per_graph))
        with torch.no_grad(), counter:
            model(torch.empty(batch_size, in_chans, *hw, device=device))
    finally:
        for h in handles:
            h.remove()
        for m, f in fused.items():
            m.fused_attn = f
    return counter.total / batch_size
