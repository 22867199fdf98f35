"""Figures of a run: learning curves (``curves.png``) and confusion matrices, with matplotlib's Agg
backend (no display needed), written atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from archzoo.checkpoint import atomic_write

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
        from archzoo.engine.checkpoints import publish

        return publish(atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")))
    finally:
        plt.close(fig)


def _col(rows: Sequence[dict[str, Any]], key: str) -> list[float]:
    out = []
    for r in rows:
        v = r.get(key)
        out.append(float(v) if v not in (None, "") else float("nan"))
    return out


def plot_curves(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss and top-1 accuracy per epoch, train and val, from ``metrics.csv`` rows."""
    plt = _pyplot()
    epochs = [int(r["epoch"]) for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "top-1 accuracy (%)")):
        ax.plot(epochs, _col(rows, f"train_{key}"), marker="o", ms=3, label="train")
        ax.plot(epochs, _col(rows, f"val_{key}"), marker="o", ms=3, label="val")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_yscale("log")  # early validation losses can be 100x the final ones
    ax_loss.set_title("loss (train: with label smoothing)", fontsize=9)
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
