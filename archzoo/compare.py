"""``archzoo compare``: train several models briefly on the same data, benchmark them side by side,
and write a leaderboard (table, CSV, and an accuracy-vs-throughput PNG with the Pareto front)."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = ["CompareRow", "compare", "pareto_front", "plot_leaderboard"]


@dataclass
class CompareRow:
    model: str
    top1: float
    params: int
    gflops: float
    throughput: float
    latency_ms: float
    train_seconds: float
    run_dir: str
    pareto: bool = False


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For (speed, accuracy) points, higher both better: True where no other point is at least as
    good in both and strictly better in one."""
    flags = []
    for i, (s, a) in enumerate(points):
        dominated = any((s2 >= s and a2 >= a) and (s2 > s or a2 > a) for j, (s2, a2) in enumerate(points) if j != i)
        flags.append(not dominated)
    return flags


def plot_leaderboard(rows: list[CompareRow], path: str | Path, title: str = "") -> Path:
    from archzoo.engine.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        ax.scatter(r.throughput, r.top1, s=40 + 3 * r.params / 1e6, color="tab:red" if r.pareto else "tab:blue",
                   zorder=3)
        ax.annotate(f"{r.model}\n{r.params / 1e6:.1f}M", (r.throughput, r.top1), textcoords="offset points",
                    xytext=(6, -4), va="top", fontsize=8, clip_on=False)
    front = sorted((r for r in rows if r.pareto), key=lambda r: r.throughput)
    if len(front) > 1:
        ax.plot([r.throughput for r in front], [r.top1 for r in front], "--", color="tab:red", label="Pareto front")
        ax.legend(loc="lower left")
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.12)  # room for the labels of the extreme points
    ax.set_xlabel("inference throughput (images/s, log scale)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(title or "accuracy vs speed")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def compare(models: list[str], *, data: str = "digits", epochs: int = 5, img_size: int = 32, output: str | Path = "runs",
            name: str = "compare", batch: int = 32, repeats: int = 5, quiet: bool = False, **train_overrides) -> tuple[list[CompareRow], Path]:
    """Train each model with the same recipe, benchmark all of them interleaved, write the leaderboard."""
    from archzoo.bench import BenchSpec, bench
    from archzoo.io import write_text
    from archzoo.engine.config import TrainConfig
    from archzoo.engine.loop import train
    from archzoo.engine.modeling import resolve_model_kwargs
    from archzoo.errors import ConfigError
    from archzoo.registry import check_model_name

    if not models:
        raise ConfigError("compare needs at least one model")
    if len(set(models)) != len(models):
        dup = sorted({m for m in models if models.count(m) > 1})
        raise ConfigError(f"compare got the same model twice: {', '.join(dup)}")
    for m in models:
        check_model_name(m)
    for flag, value, low in (("--epochs", epochs, 1), ("--img-size", img_size, 1), ("--batch", batch, 1),
                             ("--repeats", repeats, 1)):
        if value < low:
            raise ConfigError(f"{flag} must be at least {low}, got {value}")
    out_dir = Path(output) / name
    base = TrainConfig(data=data, epochs=epochs, img_size=img_size, quiet=quiet, **train_overrides)
    for m in models:  # every model takes the inputs before the first one trains (meta device: no compute)
        resolve_model_kwargs(m, 2, base.in_chans, img_size, dict(base.model_kwargs))
    results = []
    for m in models:
        results.append(train(replace(base, model=m), output=out_dir, name=m))
    # benchmark the models as trained: the data's class count, not the default 1000-class head
    num_classes = [json.loads((Path(tr.run_dir) / "config.json").read_text())["run"]["num_classes"] for tr in results]
    specs = [BenchSpec(m, model_kwargs={"num_classes": n}) for m, n in zip(models, num_classes)]
    speeds = bench(specs, img_size=img_size, batch=batch, repeats=repeats,
                   memory=False, progress=not quiet)
    rows = []
    for m, tr, sp in zip(models, results, speeds):
        top1 = tr.test.metrics["acc"] if tr.test is not None else float(tr.best_value or 0.0)
        rows.append(CompareRow(m, top1, sp.params, sp.gflops, sp.throughput, sp.latency_ms, tr.seconds, str(tr.run_dir)))
    for r, flag in zip(rows, pareto_front([(r.throughput, r.top1) for r in rows])):
        r.pareto = flag
    rows.sort(key=lambda r: -r.top1)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CompareRow.__dataclass_fields__))
    w.writeheader()
    for r in rows:
        w.writerow(r.__dict__)
    write_text(out_dir / "leaderboard.csv", buf.getvalue())
    write_text(out_dir / "leaderboard.json", json.dumps([r.__dict__ for r in rows], indent=2))
    plot_leaderboard(rows, out_dir / "leaderboard.png", f"{data}, {epochs} epochs, {img_size}px, batch {batch} on CPU")
    return rows, out_dir


def print_leaderboard(rows: list[CompareRow], file=None) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    t = Table(title="archzoo compare (sorted by test top-1; * = on the Pareto front of accuracy vs throughput)")
    for c in ("model", "top-1 %", "params (M)", "GFLOPs", "img/s", "latency ms", "train s"):
        t.add_column(c)
    for r in rows:
        t.add_row(("* " if r.pareto else "  ") + r.model, f"{r.top1:.2f}", f"{r.params / 1e6:.2f}", f"{r.gflops:.3f}",
                  f"{r.throughput:.1f}", f"{r.latency_ms:.2f}", f"{r.train_seconds:.0f}")
    Console(file=file or sys.stdout, width=160).print(t)
