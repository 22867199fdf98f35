"""Figures of a run: learning curves (``curves.png``) and confusion matrices, with matplotlib's Agg
backend (no display needed), written atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from archzoo.io import atomic_write

__all__ = ["plot_curves", "plot_confusion"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    plt = _pyplot()
    try:
        # the temp file's suffix is not .png, so name the format
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _col(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    out = []
    for r in rows:
        v = r.get(key)
        out.append(float(v) if v not in (None, "") else float("nan"))
    return out


def plot_curves(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "", metric: str = "acc",
                metric_label: str = "top-1 accuracy (%)") -> Path:
    """Loss and the task's primary ``metric`` per epoch, train and val, from ``metrics.csv`` rows
    (a ``train_<metric>`` column is drawn where the task logs one)."""
    plt = _pyplot()
    epochs = [int(r["epoch"]) for r in rows]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_metric, metric, metric_label or metric)):
        for split in ("train", "val"):
            if any(f"{split}_{key}" in r for r in rows):
                ax.plot(epochs, _col(rows, f"{split}_{key}"), marker="o", ms=3, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_yscale("log")  # early validation losses can be 100x the final ones
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(matrix: Any, class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """A confusion matrix (rows: true class, columns: predicted), counts written in small cells."""
    import numpy as np

    plt = _pyplot()
    m = np.asarray(matrix)
    k = m.shape[0]
    size = min(max(4.0, 0.45 * k + 2.0), 30.0)
    fig, ax = plt.subplots(figsize=(size, size))
    row = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, np.maximum(row, 1))
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 30:
        ticks = range(k)
        names = [str(n) for n in class_names]
        ax.set_xticks(list(ticks), names, rotation=90 if max(map(len, names), default=1) > 2 else 0)
        ax.set_yticks(list(ticks), names)
        for i in range(k):
            for j in range(k):
                if m[i, j]:
                    ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return _save(fig, path)
