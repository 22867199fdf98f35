"""The fastest exact inference form of any model of the collection.

``deploy(model)`` returns a copy in eval mode with
1. each architecture's own re-parameterisation applied (timm's convention: a module's ``fuse()``,
   ``reparameterize()`` or ``switch_to_deploy()``, walked by ``timm.models.reparameterize_model``;
   e.g. UniRepLKNet merges its dilated branches, SLAB folds its re-parameterised BatchNorm),
2. every exclusive Conv-BatchNorm pair fused into the convolution (the ConvBN paper's Deploy mode,
   :mod:`archzoo.methods.convbn`, found on a traced forward pass so it works for any model),
3. on CPU, ``nn.Linear`` layers computed as channels-last 1x1 convolutions where that is faster *on
   this machine*: on AVX-512 CPUs oneDNN's 1x1 convolution often beats the MKL GEMM behind
   ``nn.Linear`` at the MLP shapes of ConvNeXt-like and transformer blocks. The choice is made per
   layer shape by timing both on the example input's activations (``linear_route="auto"``), never
   assumed; the arithmetic is the same matrix product, so outputs agree to float32 rounding.

Existing routes were measured against this one (``benchmarks/cpu_inference_routes.py``: interleaved,
batch 8 at 224 px, 2 AVX-512 cores, an A/A control within 3 %). In two runs: ``deploy(device="cpu")``
x1.06-1.07 over eager eval for ConvNeXt-T and CvT-13, x1.02 for HorNet-T (two Linears);
``torch.compile`` with inductor weight freezing x0.98-1.06 after 10-90 s of compiling, and x0.80-0.92
compiled on top of the 1x1-conv route. A first run without the A/A control had compile-freezing at
x1.04-1.17, and ``torch.jit.freeze`` + ``optimize_for_inference`` and oneDNN ``MkldnnLinear`` below
eager (x0.80-0.97). So the deploy form stays eager; ``archzoo bench --compile`` measures compiled
forms on the user's own hardware.

Outputs equal the eval-mode model's up to float32 rounding.
"""
from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from archzoo.errors import ConfigError

__all__ = ["deploy", "DeployReport", "LinearAsConv1x1", "choose_linear_routes"]

LINEAR_ROUTES = ("auto", "linear", "conv1x1")


@dataclass
class DeployReport:
    reparameterized: list[str] = field(default_factory=list)
    conv_bn_fused: int = 0
    batchnorms_left: int = 0
    linear_as_conv: int = 0
    linear_timings: dict = field(default_factory=dict)  # (tokens, in, out) -> (linear s, conv1x1 s)

    def __str__(self) -> str:
        return (f"{len(self.reparameterized)} module(s) re-parameterised, {self.conv_bn_fused} Conv-BN pair(s) fused, "
                f"{self.batchnorms_left} BatchNorm(s) left, {self.linear_as_conv} Linear layer(s) as 1x1 conv")


class LinearAsConv1x1(nn.Module):
    """``nn.Linear`` computed by a 1x1 convolution over a channels-last view of its input.

    An input (..., C) with contiguous rows is exactly the channels-last memory of an (N, C, 1, L)
    image, so the view costs nothing and oneDNN's convolution kernels do the matrix product. Same
    parameters and state-dict keys as the Linear it replaces."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        rows = x.reshape(1, 1, -1, self.in_features).permute(0, 3, 1, 2)  # (1, C, 1, L), channels-last
        w = self.weight.view(self.out_features, self.in_features, 1, 1)
        y = nn.functional.conv2d(rows, w, self.bias)  # channels-last in -> channels-last out
        return y.permute(0, 2, 3, 1).reshape(*lead, self.out_features)


def _median_time(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def choose_linear_routes(model: nn.Module, example_input: torch.Tensor, margin: float = 0.05) -> dict:
    """Time each distinct Linear shape of a forward on ``example_input`` both ways (interleaved);
    returns {(tokens, in, out): (linear seconds, conv1x1 seconds)} and marks the Linear modules
    where the 1x1 convolution is faster by more than ``margin``."""
    shapes: dict[nn.Module, tuple[int, int, int]] = {}

    def hook(m, args, out):
        x = args[0]
        shapes[m] = (x.numel() // x.shape[-1], m.in_features, m.out_features)

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) is nn.Linear]
    with torch.inference_mode():
        model(example_input)
    for h in handles:
        h.remove()
    timings: dict = {}
    for key in sorted(set(shapes.values())):
        tokens, cin, cout = key
        lin = nn.Linear(cin, cout).to(example_input.dtype)
        conv = LinearAsConv1x1(lin)
        x = torch.randn(tokens, cin, dtype=example_input.dtype)
        with torch.inference_mode():
            tl, tc = [], []
            for _ in range(3):  # interleaved rounds, medians of medians
                tl.append(_median_time(lambda: lin(x)))
                tc.append(_median_time(lambda: conv(x)))
        timings[key] = (statistics.median(tl), statistics.median(tc))
    for m, key in shapes.items():
        tl, tc = timings[key]
        m.__dict__["_archzoo_use_conv"] = tc < tl * (1 - margin)
    return timings


def _swap_linears(model: nn.Module, route: str) -> int:
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and (route == "conv1x1" or child.__dict__.get("_archzoo_use_conv")):
                setattr(parent, name, LinearAsConv1x1(child))
                n += 1
    return n


def _reparameterize(model: nn.Module) -> list[str]:
    from timm.models import reparameterize_model

    hooked = [n for n, m in model.named_modules()
              if m is not model and any(callable(getattr(m, h, None)) for h in ("fuse", "reparameterize", "switch_to_deploy"))]
    reparameterize_model(model, inplace=True)
    return hooked


def deploy(model: nn.Module, example_input: torch.Tensor | None = None, inplace: bool = False,
           device: str | torch.device | None = None, linear_route: str | None = None) -> nn.Module:
    """The model's fastest exact inference form; ``model.deploy_report`` says what was done.

    ``device``: the target; the model is moved there, and on "cpu" the Linear route defaults to "auto".
    ``linear_route``: "linear" keeps nn.Linear, "conv1x1" computes every Linear as a channels-last
    1x1 convolution, "auto" times both per layer shape on this machine's CPU and keeps the faster."""
    from archzoo.methods.convbn import _example_input, set_mode

    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if linear_route is None:
        linear_route = "auto" if device is not None and device.type == "cpu" else "linear"
    if linear_route not in LINEAR_ROUTES:
        raise ConfigError(f"unknown linear_route {linear_route!r}; choose one of {', '.join(LINEAR_ROUTES)}")
    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    if device is not None:
        model.to(device)
        if example_input is not None:
            example_input = example_input.to(device)
    report = DeployReport()
    report.reparameterized = _reparameterize(model)
    report.conv_bn_fused = set_mode(model, "deploy", example_input)
    report.batchnorms_left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if linear_route != "linear":
        p = next(model.parameters())
        if linear_route == "auto" and p.device.type != "cpu":
            raise ConfigError("linear_route='auto' measures CPU kernels; use it on a CPU model")
        if linear_route == "auto":
            x = example_input if example_input is not None else _example_input(model)
            report.linear_timings = choose_linear_routes(model, x)
        report.linear_as_conv = _swap_linears(model, linear_route)
    model.__dict__["deploy_report"] = report
    return model
