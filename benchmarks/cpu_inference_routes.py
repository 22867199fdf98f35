"""Which CPU inference route is fastest for a model, measured side by side (issue 17, point 4).

Routes, all built from the same eval-mode model and fed the same float32 NCHW batch:

- ``eval``: the model as is (baseline); ``eval-copy``: a deep copy of it, an A/A control whose
  ratio to ``eval`` shows the noise floor of the machine;
- ``deploy(linear)``: ``archzoo.deploy(model, linear_route="linear")``: re-parameterised, Conv-BN fused;
- ``deploy(cpu)``: ``archzoo.deploy(model, device="cpu")``: the same, plus each Linear shape timed as
  MKL GEMM vs a channels-last oneDNN 1x1 convolution and the faster kept;
- ``onednn-linear``: every ``nn.Linear`` replaced by ``torch.utils.mkldnn.MkldnnLinear`` (dense in/out);
- ``jit-freeze-ofi``: ``torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model)))``;
- ``compile``: ``torch.compile(model)`` (inductor, default options);
- ``compile-freezing``: ``torch.compile(model, options={"freezing": True})`` (inductor; the weights
  are constant-folded and pre-packed for oneDNN/MKL);
- ``deploy(cpu)+compile-freezing``: the two above, compiled on top of the deploy form.

Every route's output is compared with the eval model's (max relative difference). Forwards are timed
interleaved (one of each route per round) after warm-up; the table gives the median time per batch
and the speed-up over ``eval``, with the compile time of the compiled routes.

    python benchmarks/cpu_inference_routes.py --models convnext_tiny hornet_tiny_7x7 cvt_13 --batch 8
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

import archzoo

ROUTES = ("eval", "eval-copy", "deploy(linear)", "deploy(cpu)", "onednn-linear", "jit-freeze-ofi", "compile",
          "compile-freezing", "deploy(cpu)+compile-freezing")


def _onednn_linear(model: torch.nn.Module) -> torch.nn.Module:
    from torch.utils.mkldnn import MkldnnLinear

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, MkldnnLinear(child, torch.float32))
    return model


def _first_call_seconds(fn, x: torch.Tensor) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        fn(x)
    return time.perf_counter() - t0


def build_routes(name: str, x: torch.Tensor, routes: list[str]) -> tuple[dict, dict]:
    base = archzoo.create_model(name).eval()
    fns: dict = {}
    compile_s: dict = {}
    for r in routes:
        if r == "eval":
            fns[r] = base
        elif r == "eval-copy":
            fns[r] = copy.deepcopy(base)
        elif r == "deploy(linear)":
            fns[r] = archzoo.deploy(base, linear_route="linear")
        elif r == "deploy(cpu)":
            fns[r] = archzoo.deploy(base, x, device="cpu")
        elif r == "onednn-linear":
            fns[r] = _onednn_linear(copy.deepcopy(base))
        elif r == "jit-freeze-ofi":
            with torch.no_grad():
                traced = torch.jit.trace(copy.deepcopy(base), x, check_trace=False)
            fns[r] = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
        elif r == "compile":
            fns[r] = torch.compile(copy.deepcopy(base))
            compile_s[r] = _first_call_seconds(fns[r], x)
        elif r == "compile-freezing":
            fns[r] = torch.compile(copy.deepcopy(base), options={"freezing": True})
            compile_s[r] = _first_call_seconds(fns[r], x)
        elif r == "deploy(cpu)+compile-freezing":
            fns[r] = torch.compile(archzoo.deploy(base, x, device="cpu"), options={"freezing": True})
            compile_s[r] = _first_call_seconds(fns[r], x)
        else:
            raise SystemExit(f"unknown route {r!r}; choose from {', '.join(ROUTES)}")
    return fns, compile_s


def measure(fns: dict, x: torch.Tensor, rounds: int, warmup: int, settle: int) -> dict[str, float]:
    times: dict[str, list[float]] = {r: [] for r in fns}
    with torch.no_grad():
        for _ in range(warmup):
            for f in fns.values():
                f(x)
        for _ in range(rounds):
            for r, f in fns.items():
                for _ in range(settle):  # untimed: lets a route's thread pool take over from the last one's
                    f(x)
                t0 = time.perf_counter()
                f(x)
                times[r].append(time.perf_counter() - t0)
    return {r: statistics.median(t) for r, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["convnext_tiny", "hornet_tiny_7x7", "cvt_13"])
    ap.add_argument("--routes", nargs="+", default=list(ROUTES))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--settle", type=int, default=1, help="untimed forwards before each timed one")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=max(Console().width, 140))
    table = Table(title=f"CPU inference routes, batch {args.batch} at {args.img_size}px, {torch.get_num_threads()} threads "
                        f"(median of {args.rounds} interleaved rounds)")
    for col in ("model", "route", "ms / batch", "images/s", "speed-up vs eval", "max rel diff", "compile s"):
        table.add_column(col, justify="left" if col in ("model", "route") else "right")
    torch.manual_seed(0)
    for name in args.models:
        x = torch.randn(args.batch, 3, args.img_size, args.img_size)
        fns, compile_s = build_routes(name, x, args.routes)
        with torch.no_grad():
            ref = fns["eval"](x) if "eval" in fns else None
            diffs = {r: (float((f(x) - ref).abs().max() / ref.abs().max()) if ref is not None else float("nan"))
                     for r, f in fns.items()}
        med = measure(fns, x, args.rounds, args.warmup, args.settle)
        base = med.get("eval")
        for r in fns:
            table.add_row(name, r, f"{1e3 * med[r]:.1f}", f"{args.batch / med[r]:.1f}",
                          f"x{base / med[r]:.2f}" if base else "", f"{diffs[r]:.1e}",
                          f"{compile_s[r]:.0f}" if r in compile_s else "")
        console.print(f"[dim]{name} done[/dim]")
    console.print(table)


if __name__ == "__main__":
    main()
