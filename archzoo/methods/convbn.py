"""Efficient ConvBN blocks: Train, Eval, Deploy and Tune modes for any model.

Paper: "Efficient ConvBN Blocks for Transfer Learning and Beyond" (arXiv 2305.11624); authors' code in
OpenMMLab (mmcv ``ConvModule(efficient_conv_bn_eval=True)``) and PyTorch's compile-time pass
``torch._inductor.config.efficient_conv_bn_eval_fx_passes``.

A Conv-BatchNorm pair whose convolution output feeds only the BatchNorm can run in four modes:

- ``train``: plain modules, BatchNorm normalises with batch statistics (when the model trains);
- ``eval``: plain modules, BatchNorm frozen to its running statistics (stays frozen under ``model.train()``);
- ``tune``: the convolution runs with ``W' = W * gamma / sqrt(var + eps)`` and
  ``b' = beta + (b - mean) * gamma / sqrt(var + eps)`` recomputed from the live parameters at every
  forward, and the BatchNorm is skipped. Same outputs and gradients as ``eval``; autograd no longer
  keeps the convolution's output for the BatchNorm's backward, which is the memory the paper saves.
  Parameters, buffers and state-dict keys are unchanged;
- ``deploy``: the fused weights are written into the convolution once and the BatchNorm is replaced by
  ``nn.Identity`` (fastest inference; one-way, and the paper shows it trains unstably).

Pairs are found dynamically: one forward pass on an example input records, with forward hooks, which
BatchNorm consumes which convolution's output tensor, and the autograd graph of that pass tells whether
the convolution output has any other consumer. Unlike ``torch.fx`` tracing this works on any eager
model, including data-dependent Python control flow. What it cannot handle: a pair used only on a
branch the example input does not take (it is left alone), a convolution whose output is used in place
or whose output is also returned from ``forward`` without passing through the BatchNorm (left alone),
and a convolution module called twice with different BatchNorms (left alone).
PyTorch's inductor pass does the same rewrite only under ``torch.compile``; this one works in eager mode.
"""
from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from archzoo.engine.plugins import Method, register_method
from archzoo.errors import ConfigError

__all__ = ["set_mode", "find_conv_bn_pairs", "fuse_conv_bn_weights", "freeze_batchnorm", "MODES"]

MODES = ("train", "eval", "tune", "deploy")
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_BN = nn.modules.batchnorm._BatchNorm
_PAIRS_ATTR = "_archzoo_convbn_pairs"


def _example_input(model: nn.Module) -> torch.Tensor:
    from archzoo.validation import min_input_size

    cfg = getattr(model, "pretrained_cfg", None) or {}
    first = next((m for m in model.modules() if isinstance(m, _CONV)), None)
    in_chans = first.in_channels if first is not None else 3
    dims = 2 if first is None else {1: 1, 2: 2, 3: 3}[first.weight.dim() - 2]
    if cfg.get("fixed_input_size") and cfg.get("input_size"):
        size = cfg["input_size"][-1]  # models built for one input size take only that one
    else:
        size = min(224, max(64, min_input_size(model)))
    p = next(model.parameters())
    return torch.randn(2, in_chans, *([size] * dims), device=p.device, dtype=p.dtype)


def _grad_fn_consumers(roots: Iterable[torch.Tensor]) -> dict:
    """For every autograd node reachable from ``roots``: the list of nodes that take its output."""
    consumers: dict = {}
    stack = [t.grad_fn for t in roots if t.grad_fn is not None]
    seen = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for nxt, _ in node.next_functions:
            if nxt is not None:
                consumers.setdefault(nxt, []).append(node)
                stack.append(nxt)
    return consumers


def find_conv_bn_pairs(model: nn.Module, example_input: torch.Tensor | None = None) -> list[tuple[str, str]]:
    """Names of (conv, bn) pairs where the BatchNorm's input is the convolution's output and nothing
    else consumes that output. Runs one forward in eval mode; the model's state is not changed."""
    names = {m: n for n, m in model.named_modules()}
    conv_out: dict[int, tuple[nn.Module, torch.Tensor]] = {}
    conv_calls: dict[nn.Module, int] = {}
    bn_in: list[tuple[nn.Module, torch.Tensor]] = []
    bn_calls: dict[nn.Module, int] = {}

    def conv_hook(m, args, out):
        conv_calls[m] = conv_calls.get(m, 0) + 1
        conv_out[id(out)] = (m, out)

    def bn_hook(m, args, out):
        bn_calls[m] = bn_calls.get(m, 0) + 1
        bn_in.append((m, args[0]))

    handles = [m.register_forward_hook(conv_hook) for m in model.modules() if isinstance(m, _CONV)]
    handles += [m.register_forward_hook(bn_hook) for m in model.modules() if isinstance(m, _BN)]
    was_training = {m: m.training for m in model.modules()}
    x = example_input if example_input is not None else _example_input(model)
    try:
        model.eval()
        with torch.enable_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        for m, t in was_training.items():
            m.training = t
    outs = [o for o in (out.values() if isinstance(out, dict) else out if isinstance(out, (list, tuple)) else [out])
            if isinstance(o, torch.Tensor)]
    consumers = _grad_fn_consumers(outs)
    returned = {o.grad_fn for o in outs}
    pairs = []
    for bn, inp in bn_in:
        hit = conv_out.get(id(inp))
        if hit is None or hit[1] is not inp:
            continue
        conv, cout = hit
        if conv_calls[conv] != 1 or bn_calls[bn] != 1 or cout.grad_fn is None or cout.grad_fn in returned:
            continue
        if len(consumers.get(cout.grad_fn, [])) != 1:  # the BatchNorm must be its only consumer
            continue
        if conv.out_channels != bn.num_features or not bn.track_running_stats:
            continue
        pairs.append((names[conv], names[bn]))
    return pairs


def fuse_conv_bn_weights(conv: nn.Module, bn: _BN) -> tuple[torch.Tensor, torch.Tensor]:
    """(W', b') of the convolution followed by the BatchNorm in eval mode, differentiable in the live
    parameters (the paper's Eq. for Tune mode)."""
    scale = bn.running_var.add(bn.eps).rsqrt()
    if bn.weight is not None:
        scale = bn.weight * scale
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    shift = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    b = shift + (bias - bn.running_mean) * scale
    w = conv.weight
    if isinstance(conv, nn.modules.conv._ConvTransposeNd):
        # weight (in, out/groups, *k): output channel = group * (out/groups) + j
        g = conv.groups
        ws = w.reshape(g, w.shape[0] // g, w.shape[1], *w.shape[2:])
        s = scale.reshape(g, 1, w.shape[1], *([1] * (w.dim() - 2)))
        return (ws * s).reshape(w.shape), b
    return w * scale.reshape(-1, *([1] * (w.dim() - 1))), b


def _tune_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    w, b = fuse_conv_bn_weights(self, self._archzoo_bn)
    if isinstance(self, nn.modules.conv._ConvTransposeNd):
        out_pad = self._output_padding(x, None, self.stride, self.padding, self.kernel_size,
                                       len(self.kernel_size), self.dilation)
        fn = {1: nn.functional.conv_transpose1d, 2: nn.functional.conv_transpose2d, 3: nn.functional.conv_transpose3d}
        return fn[len(self.kernel_size)](x, w, b, self.stride, self.padding, out_pad, self.groups, self.dilation)
    return self._conv_forward(x, w, b)


def _skip_norm_forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # timm's BatchNormAct2d applies dropout and an activation after normalising: keep those.
    if hasattr(self, "act") and hasattr(self, "drop"):
        return self.act(self.drop(x))
    return x


def _after_norm(bn: nn.Module) -> nn.Module:
    """What stays of a BatchNorm module once its normalisation is fused away."""
    if hasattr(bn, "act") and hasattr(bn, "drop"):
        return nn.Sequential(bn.drop, bn.act)
    return nn.Identity()


def _frozen_train(self: nn.Module, mode: bool = True) -> nn.Module:
    # A frozen BatchNorm ignores model.train(): it keeps its running statistics.
    self.training = False
    return self


def freeze_batchnorm(model: nn.Module) -> int:
    """Freeze every BatchNorm to its running statistics (also under later ``model.train()``);
    returns how many were frozen."""
    n = 0
    for m in model.modules():
        if isinstance(m, _BN):
            m.train = types.MethodType(_frozen_train, m)
            m.training = False
            n += 1
    return n


def _restore(conv: nn.Module, bn: nn.Module) -> None:
    for mod, attr in ((conv, "forward"), (bn, "forward"), (bn, "train")):
        mod.__dict__.pop(attr, None)
    conv.__dict__.pop("_archzoo_bn", None)


def set_mode(model: nn.Module, mode: str, example_input: torch.Tensor | None = None) -> int:
    """Switch every exclusive Conv-BatchNorm pair of ``model`` to ``mode`` (train | eval | tune |
    deploy); returns the number of pairs switched. Pairs are found once and remembered."""
    if mode not in MODES:
        raise ConfigError(f"unknown ConvBN mode {mode!r}; choose one of {', '.join(MODES)}")
    if getattr(model, "_archzoo_convbn_deployed", False):
        raise ValueError("this model's Conv-BN pairs were fused for deployment; rebuild it to switch modes")
    pairs = model.__dict__.get(_PAIRS_ATTR)
    if pairs is None:
        pairs = find_conv_bn_pairs(model, example_input)
        model.__dict__[_PAIRS_ATTR] = pairs
    modules = dict(model.named_modules())
    for conv_name, bn_name in pairs:
        conv, bn = modules[conv_name], modules[bn_name]
        _restore(conv, bn)
        if mode == "train":
            bn.training = model.training
        elif mode == "eval":
            bn.train = types.MethodType(_frozen_train, bn)
            bn.training = False
        elif mode == "tune":
            conv.__dict__["_archzoo_bn"] = bn  # plain attribute: no extra state-dict keys
            conv.forward = types.MethodType(_tune_forward, conv)
            bn.forward = types.MethodType(_skip_norm_forward, bn)
            bn.train = types.MethodType(_frozen_train, bn)
            bn.training = False
        else:  # deploy
            with torch.no_grad():
                w, b = fuse_conv_bn_weights(conv, bn)
                conv.weight = nn.Parameter(w.detach().clone(), requires_grad=conv.weight.requires_grad)
                conv.bias = nn.Parameter(b.detach().clone(), requires_grad=conv.weight.requires_grad)
            parent_name, _, attr = bn_name.rpartition(".")
            parent = modules[parent_name] if parent_name else model
            setattr(parent, attr, _after_norm(bn))
    if mode == "deploy":
        model.__dict__["_archzoo_convbn_deployed"] = True
    return len(pairs)


# -- the engine plug-in: `archzoo train --method convbn --convbn-mode tune` --------------------------
@register_method("convbn")
class ConvBNMethod(Method):
    """ConvBN (P25): fine-tune with BatchNorm statistics frozen, in Tune mode's smaller memory.

    ``tune`` computes Eval mode's function and gradients with less activation memory; ``eval`` is the
    usual frozen Conv-BN; ``frozen`` freezes every BatchNorm (exclusive pair or not) without changing
    how it computes."""

    @dataclass
    class Options:
        convbn_mode: str = field(default="tune", metadata={"help": "tune (less memory), eval, or frozen (every "
                                                                   "BatchNorm at its running statistics)",
                                                           "choices": ("tune", "eval", "frozen")})

    def setup(self, model, task, example_batch) -> str | None:
        mode = self.options.convbn_mode
        if mode == "frozen":
            return f"ConvBN: {freeze_batchnorm(model)} BatchNorm layer(s) frozen at their running statistics"
        x = example_batch[0] if isinstance(example_batch, (tuple, list)) else example_batch
        return f"ConvBN: {set_mode(model, mode, x)} Conv-BatchNorm pair(s) in {mode} mode"
