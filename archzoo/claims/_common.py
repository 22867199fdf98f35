"""Helpers shared by the claim experiments: budget checks, interleaved timing, figures."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

BUDGETS = ("smoke", "full")


def check_budget(budget: str) -> str:
    if budget not in BUDGETS:
        raise ValueError(f"budget must be 'smoke' or 'full', got {budget!r}")
    return budget


def say(verbose: bool, text: str) -> None:
    if verbose:
        print(text, file=sys.stderr, flush=True)


def interleaved_medians(fns: Sequence[Callable[[], object]], repeats: int, warmup: int = 1) -> list[float]:
    """Median seconds of each callable, timed interleaved (A B A B ...) so that load changes on a
    shared machine hit every arm alike; ``warmup`` untimed rounds first."""
    times: list[list[float]] = [[] for _ in fns]
    for r in range(warmup + repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if r >= warmup:
                times[i].append(dt)
    return [statistics.median(t) for t in times]


def paired_ratio_median(a: Callable[[], object], b: Callable[[], object], repeats: int, warmup: int = 1) -> tuple[float, float, float]:
    """(median time of a, median time of b, median of the per-round ratios a/b), timed interleaved.
    The per-round ratio compares runs seconds apart, which survives slow drifts of the machine's load."""
    ta, tb, ratios = [], [], []
    for r in range(warmup + repeats):
        t0 = time.perf_counter()
        a()
        t1 = time.perf_counter()
        b()
        t2 = time.perf_counter()
        if r >= warmup:
            ta.append(t1 - t0)
            tb.append(t2 - t1)
            ratios.append((t1 - t0) / (t2 - t1))
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6.4, 4.0)):
    """(figure, axes) drawn with matplotlib's Agg canvas: no pyplot, no display, no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def save_figure(fig, out_dir: str | Path, name: str) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
