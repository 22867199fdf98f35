"""SimpleNet (P21): a slim plain ConvNet is accurate with few parameters.

Paper: Hasanpour et al., "Lets keep it simple, Using simple architectures to outperform deeper and more
complex architectures", arXiv 1608.06037.
Model measured: ``simplenet_cifar_310k`` (the paper's slim CIFAR network), the default of ``archzoo train``.
"""
from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from archzoo.claims._common import check_budget, new_figure, save_figure, say

__all__ = ["default_run_on_digits"]

MODEL = "simplenet_cifar_310k"


def _read_history(run_dir: Path) -> list[dict[str, str]]:
    p = run_dir / "metrics.csv"
    if not p.is_file():
        return []
    with p.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def default_run_on_digits(budget: str = "full", out_dir: str | Path | None = None, *,
                          verbose: bool = False) -> dict[str, float]:
    """Test top-1 of the slim SimpleNet after ``archzoo train``'s default run on the embedded digits.

    Claim (arXiv 1608.06037, abstract and its CIFAR-10/MNIST results tables): a plain, well-designed
    13-layer ConvNet reaches accuracy on par with much deeper and larger networks with 2 to 25 times
    fewer parameters ("near state of the art on MNIST"). Measured on the authors' slim CIFAR network
    (archzoo's simplenet_cifar_310k: 312,362 parameters at 10 classes in the authors' PyTorch port).

    Scaled down: CIFAR-10/MNIST -> scikit-learn's 1,797 8x8 digits (the fixed 70/15/15 split, upsampled
    to 32 px; 269 test images), the paper's long Caffe schedule -> ``archzoo train`` with every default
    (simplenet_cifar_310k, 6 epochs, batch 64, AdamW lr 1e-2, cosine, label smoothing 0.1, seed 0): the
    test split evaluated once on the checkpoint with the best validation top-1.

    Returns ``test_top1`` and ``test_top5`` (percent), ``best_val_top1``, ``params`` (312,362 at 10
    classes, the authors' code's count), ``epochs``, ``steps`` and the training seconds.
    ``budget="smoke"``: the same run stopped after 3 optimiser steps.
    """
    check_budget(budget)
    from archzoo.engine import TrainConfig, train
    from archzoo.engine.progress import RunConsole

    cfg = TrainConfig(model=MODEL, data="digits", seed=0, quiet=True)  # everything else: the defaults
    if budget == "smoke":
        cfg.epochs, cfg.max_steps = 1, 3
    with tempfile.TemporaryDirectory(prefix="archzoo-claim-simplenet-") as tmp:
        say(verbose, f"archzoo train --model {MODEL} --data digits --epochs {cfg.epochs}")
        res = train(cfg, output=tmp, name="run", console=RunConsole(enabled=verbose, quiet=True))
        history = _read_history(Path(res.run_dir))
    from archzoo.registry import create_model

    params = sum(p.numel() for p in create_model(MODEL, num_classes=10).parameters())
    test = res.test.metrics if res.test is not None else {}
    out = {
        "test_top1": float(test.get("acc", float("nan"))),
        "test_top5": float(test.get("top5", float("nan"))),
        "best_val_top1": float(res.best_value) if res.best_value is not None else float("nan"),
        "params": float(params),
        "epochs": float(cfg.epochs),
        "steps": float(res.summary.get("global_step", 0) or 0),
        "train_seconds": float(res.seconds),
    }
    if out_dir is not None:
        fig, ax = new_figure(figsize=(6.4, 4.0))
        ep = [int(r["epoch"]) for r in history if r.get("val_acc")]
        ax.plot(ep, [float(r["val_acc"]) for r in history if r.get("val_acc")], "o-", label="validation top-1")
        if history and history[0].get("train_acc"):
            ax.plot(ep, [float(r["train_acc"]) for r in history if r.get("val_acc")], "s--",
                    label="training top-1 (augmented)")
        ax.axhline(out["test_top1"], color="tab:red", lw=1,
                   label=f"test top-1 {out['test_top1']:.2f} % (best checkpoint)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("top-1 (%)")
        ax.set_title(f"{MODEL} ({params:,} params), default `archzoo train` on digits")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
        save_figure(fig, out_dir, "simplenet_digits.png")
    return out
