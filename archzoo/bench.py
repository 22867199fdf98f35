"""Measure what models cost on this machine: parameters, FLOPs, throughput, latency, peak memory.

Several models (or forms of one model) are timed interleaved — one timed run of A, then of B, then
A again — so that a ratio between them holds on a noisy machine; every figure is a median over repeats.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from archzoo.errors import ConfigError, OutputError

__all__ = ["BenchSpec", "BenchResult", "bench", "ratios", "write_results"]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class BenchSpec:
    model: str
    deploy: bool = False
    label: str = ""
    model_kwargs: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.label or (f"{self.model} (deploy)" if self.deploy else self.model)


@dataclass
class BenchResult:
    name: str
    model: str
    deploy: bool
    device: str
    dtype: str
    batch: int
    img_size: int
    params: int
    gflops: float  # 2 x GMACs, batch 1
    throughput: float  # images/s at `batch`
    latency_ms: float  # batch 1, median
    latency_p90_ms: float
    train_throughput: float | None = None
    peak_memory_mb: float | None = None
    extra: dict = field(default_factory=dict)


def parse_device(device: str | torch.device) -> torch.device:
    """``cpu``, ``cuda`` or ``cuda:N`` as a torch.device; :class:`ConfigError` for anything else, or a
    CUDA device this machine does not have."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}; use cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but no CUDA GPU is available here")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r} requested but this machine has {torch.cuda.device_count()} GPU(s)")
    return dev


def _check(device: str, batch: int, img_size: int, dtype: str, repeats: int) -> torch.device:
    if batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}")
    if img_size < 1:
        raise ConfigError(f"--img-size must be positive, got {img_size}")
    if repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, got {repeats}")
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return parse_device(device)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn: Callable[[], object], dev: torch.device) -> float:
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t0


def build(spec: BenchSpec, in_chans: int = 3, num_classes: int | None = None,
          device: str | None = None, img_size: int | None = None) -> nn.Module:
    from archzoo.registry import create_model

    kw = dict(spec.model_kwargs)
    if num_classes is not None:
        kw.setdefault("num_classes", num_classes)
    model = create_model(spec.model, in_chans=in_chans, **kw).eval()
    if spec.deploy:
        from archzoo.deploy import deploy

        x = torch.randn(2, in_chans, img_size, img_size) if img_size else None
        model = deploy(model, example_input=x, device=device)
    return model


def _peak_rss_mb(spec: BenchSpec, batch: int, img_size: int, dtype: str, channels_last: bool) -> float:
    """Peak resident-memory growth (over the imported interpreter) of building the model and running
    one inference in a fresh process (CPU): weights plus the activations' high-water mark."""
    code = f"""
import resource, torch, archzoo
from archzoo.bench import BenchSpec, build
import os
torch.zeros(1)  # torch's own start-up allocations belong to the baseline
# current resident size (KiB), not the high-water mark: import-time peaks must not hide the model's
if os.path.exists("/proc/self/statm"):
    before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
else:  # not Linux: fall back to the high-water mark so far
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
spec = BenchSpec(**{asdict(spec)!r})
m = build(spec).to(getattr(torch, {dtype!r}))
x = torch.randn({batch}, 3, {img_size}, {img_size}, dtype=getattr(torch, {dtype!r}))
if {channels_last!r}:
    m, x = m.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
with torch.inference_mode():
    m(x)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"peak-memory subprocess failed for {spec.name}: {out.stderr.strip().splitlines()[-1:]}")
    return float(out.stdout.strip().splitlines()[-1])


def bench(
    specs: list[BenchSpec],
    device: str = "cpu",
    batch: int = 16,
    img_size: int = 224,
    dtype: str = "float32",
    channels_last: bool = False,
    compile: bool = False,
    train: bool = False,
    repeats: int = 10,
    warmup: int = 2,
    memory: bool = True,
    progress: bool = True,
) -> list[BenchResult]:
    """Benchmark each spec; timed runs are interleaved across specs."""
    from archzoo.validation import check_input
    from archzoo.verify import build_on_meta, count_flops, count_params

    dev = _check(device, batch, img_size, dtype, repeats)
    dt = DTYPES[dtype]
    models, results = [], []
    for spec in specs:
        # FLOPs of the eval form, counted on the meta device (deploy fusion only folds BatchNorms);
        # parameters of the form as built (the deploy form has fewer: fused BatchNorm)
        meta_model = build_on_meta(spec.model, **spec.model_kwargs)
        check_input(meta_model, torch.empty(1, 3, img_size, img_size, device="meta"), spec.model)
        flops = count_flops(meta_model, img_size)
        model = build(spec, device=str(dev), img_size=img_size).to(device=dev, dtype=dt)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        params = count_params(model)
        # inference timings only: inductor may freeze the weights into constants (the deploy route)
        infer = torch.compile(model, options={"freezing": True}) if compile else model
        results.append(BenchResult(spec.name, spec.model, spec.deploy, str(dev), dtype, batch, img_size,
                                   params, flops / 1e9, 0.0, 0.0, 0.0))
        if spec.deploy:
            results[-1].extra["deploy"] = str(model.deploy_report)
        models.append((spec, model, infer))

    def inputs(n: int) -> torch.Tensor:
        x = torch.randn(n, 3, img_size, img_size, device=dev, dtype=dt)
        return x.to(memory_format=torch.channels_last) if channels_last else x

    xb, x1 = inputs(batch), inputs(1)
    thr: list[list[float]] = [[] for _ in specs]
    lat: list[list[float]] = [[] for _ in specs]
    trn: list[list[float]] = [[] for _ in specs]

    def train_step(model: nn.Module) -> None:
        model.train()
        out = model(xb)
        out.float().logsumexp(-1).mean().backward()
        model.zero_grad(set_to_none=True)
        model.eval()

    from contextlib import nullcontext

    from rich.progress import Progress

    bar = Progress(transient=True) if progress else nullcontext()
    with bar:
        task = bar.add_task("benchmarking", total=(warmup + repeats) * len(specs)) if progress else None
        for r in range(warmup + repeats):
            for i, (spec, model, infer) in enumerate(models):
                with torch.inference_mode():
                    tb = _timed(lambda: infer(xb), dev)
                    t1 = _timed(lambda: infer(x1), dev)
                tt = _timed(lambda: train_step(model), dev) if train and not spec.deploy else None
                if r >= warmup:
                    thr[i].append(tb)
                    lat[i].append(t1)
                    if tt is not None:
                        trn[i].append(tt)
                if progress:
                    bar.update(task, advance=1, description=f"benchmarking {spec.name} (round {r + 1})")
    for i, res in enumerate(results):
        res.throughput = batch / statistics.median(thr[i])
        res.latency_ms = statistics.median(lat[i]) * 1e3
        res.latency_p90_ms = statistics.quantiles(lat[i], n=10)[-1] * 1e3 if len(lat[i]) > 1 else res.latency_ms
        if trn[i]:
            res.train_throughput = batch / statistics.median(trn[i])
        if memory:
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
                base = torch.cuda.memory_allocated(dev)
                with torch.inference_mode():
                    models[i][2](xb)
                res.peak_memory_mb = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
            else:
                res.peak_memory_mb = _peak_rss_mb(specs[i], batch, img_size, dtype, channels_last)
    return results


def ratios(results: list[BenchResult], baseline: str) -> list[dict]:
    """Each result relative to ``baseline`` (by name): throughput and latency ratios."""
    base = next((r for r in results if r.name == baseline), None)
    if base is None:
        raise ConfigError(f"--vs {baseline!r} is not among the benchmarked models ({', '.join(r.name for r in results)})")
    return [
        {"name": r.name, "vs": base.name, "throughput_ratio": r.throughput / base.throughput,
         "latency_ratio": r.latency_ms / base.latency_ms,
         "train_throughput_ratio": (r.train_throughput / base.train_throughput)
         if r.train_throughput and base.train_throughput else None}
        for r in results if r is not base
    ]


def write_results(results: list[BenchResult], path: str | Path, vs: list[dict] | None = None) -> Path:
    """JSON (every figure, and the ratios) or CSV, by the file's suffix; written atomically."""
    import csv
    import io

    from archzoo.io import write_text

    path = Path(path)
    check_output_path(path)
    rows = [asdict(r) for r in results]
    if path.suffix == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=[k for k in rows[0] if k != "extra"])
        w.writeheader()
        for row in rows:
            row.pop("extra", None)
            w.writerow(row)
        text = buf.getvalue()
    else:
        text = json.dumps({"results": rows, "ratios": vs or [], "torch": torch.__version__,
                           "threads": torch.get_num_threads()}, indent=2)
    try:
        return write_text(path, text)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from e


def check_output_path(path: str | Path) -> Path:
    """``--out``: a .json or .csv file whose folder exists or can be created (checked before benchmarking)."""
    path = Path(path)
    if path.suffix not in (".json", ".csv"):
        raise ConfigError(f"--out {path}: write .json or .csv (by the file's suffix)")
    if path.is_dir():
        raise OutputError(f"--out {path} is a folder; give a .json or .csv file name")
    parent = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise OutputError(f"--out {path}: {parent} is not a writable folder")
    return path


def print_results(results: list[BenchResult], vs: list[dict] | None = None, file=None) -> None:
    from rich.console import Console
    from rich.table import Table

    r0 = results[0]
    t = Table(title=f"archzoo bench: {r0.device}, {r0.dtype}, batch {r0.batch}, {r0.img_size}px, "
                    f"{torch.get_num_threads()} threads (medians, interleaved)")
    cols = ["model", "params (M)", "GFLOPs", "img/s", "latency ms (p50)", "p90"]
    has_train = any(r.train_throughput for r in results)
    if has_train:
        cols.append("train img/s")
    cols.append("peak MB")
    for c in cols:
        t.add_column(c)
    for r in results:
        row = [r.name, f"{r.params / 1e6:.2f}", f"{r.gflops:.2f}", f"{r.throughput:.1f}", f"{r.latency_ms:.2f}",
               f"{r.latency_p90_ms:.2f}"]
        if has_train:
            row.append(f"{r.train_throughput:.1f}" if r.train_throughput else "-")
        row.append("-" if r.peak_memory_mb is None or r.peak_memory_mb != r.peak_memory_mb else f"{r.peak_memory_mb:.0f}")
        t.add_row(*row)
    console = Console(file=file or sys.stdout, width=200)
    console.print(t)
    for r in results:
        if r.extra.get("deploy"):
            console.print(f"{r.name}: {r.extra['deploy']}")
    for v in vs or []:
        console.print(f"{v['name']} vs {v['vs']}: throughput x{v['throughput_ratio']:.2f}, "
                      f"latency x{v['latency_ratio']:.2f}"
                      + (f", training throughput x{v['train_throughput_ratio']:.2f}" if v["train_throughput_ratio"] else ""))
