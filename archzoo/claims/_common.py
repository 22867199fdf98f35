"""Helpers shared by the claim experiments: budget checks, interleaved timing, figures."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

from archzoo.errors import ConfigError
from archzoo.io import atomic_write
from archzoo.reproduce import BUDGETS


def check_budget(budget: str) -> str:
    if budget not in BUDGETS:
        raise ConfigError(f"budget must be 'smoke' or 'full', got {budget!r}")
    return budget


def say(verbose: bool, text: str) -> None:
    if verbose:
        print(text, file=sys.stderr, flush=True)


def paired_ratio_median(a: Callable[[], object], b: Callable[[], object], repeats: int,
                        warmup: int = 1) -> tuple[float, float, float]:
    """(median seconds of ``a``, of ``b``, median of the per-round ratios t_a / t_b), the two timed
    interleaved: each round runs both, in alternating order (A B, B A, ...) so that neither always
    follows the other; ``warmup`` untimed rounds first. A per-round ratio compares runs seconds apart,
    which survives slow drifts of a shared machine's load."""
    ta: list[float] = []
    tb: list[float] = []
    for r in range(warmup + repeats):
        times = {}
        for name, fn in (("a", a), ("b", b)) if r % 2 == 0 else (("b", b), ("a", a)):
            t0 = time.perf_counter()
            fn()
            times[name] = time.perf_counter() - t0
        if r >= warmup:
            ta.append(times["a"])
            tb.append(times["b"])
    return statistics.median(ta), statistics.median(tb), statistics.median(x / y for x, y in zip(ta, tb))


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6.4, 4.0)):
    """(figure, axes) drawn with matplotlib's Agg canvas: no pyplot, no display, no global state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols)
    return fig, axes


def save_figure(fig, out_dir: str | Path, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name`` (PNG), atomically like every file archzoo writes."""
    fig.tight_layout()
    return atomic_write(Path(out_dir) / name, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
