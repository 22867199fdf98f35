"""ResFormer (P37): multi-resolution training makes a ViT accurate across test resolutions.

Paper: Tian et al., "ResFormer: Scaling ViTs with Multi-Resolution Training", CVPR 2023, arXiv 2212.00776.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from archzoo.claims._common import check_budget, new_figure, save_figure, say

__all__ = ["multires_vs_single_res"]


@dataclass(frozen=True)
class _Setup:
    model_kwargs: dict
    single_size: int
    train_sizes: tuple[int, ...]
    test_sizes: tuple[int, ...]
    epochs: int
    batch_size: int
    max_steps: int
    lr: float
    warmup_epochs: int


# A tiny ResFormer (the authors' model: global sine-cosine + depthwise-conv position embedding, local
# position embedding in every attention) with 8x8 patches: the 8x8 digits upsampled to 32 px give a
# 4x4 token grid. Sizes scaled from the paper's: trained at 224 (DeiT) vs 128/160/224 (ResFormer-MR),
# tested from 96 to 640 px (0.43x to 2.9x the largest training size); here 32 vs 16/24/32, tested at
# every multiple of the patch from 8 to 64 px (0.25x to 2x; grids 1x1 to 8x8). The data split, the
# seed (same initial weights, same batches), the optimiser, the schedule and the number of optimiser
# steps are the same for both arms; only the training resolutions (and the consistency loss) differ.
# The recipe (patch 8, AdamW lr 3e-3, batch 32, 40 epochs) was chosen on the validation split at 32 px
# for the single-resolution arm only (4x4 patches and lr 1e-3 left the ViT near 40 % after 10 epochs).
_FULL = _Setup(
    model_kwargs=dict(patch_size=8, embed_dim=64, depth=4, num_heads=2),
    single_size=32,
    train_sizes=(16, 24, 32),
    test_sizes=(8, 16, 24, 32, 40, 48, 56, 64),
    epochs=40,
    batch_size=32,
    max_steps=0,
    lr=3e-3,
    warmup_epochs=1,
)
_SMOKE = _Setup(
    model_kwargs=dict(patch_size=8, embed_dim=32, depth=1, num_heads=2),
    single_size=16,
    train_sizes=(8, 16),
    test_sizes=(8, 16, 24),
    epochs=1,
    batch_size=32,
    max_steps=3,
    lr=3e-3,
    warmup_epochs=0,
)


def _train(setup: _Setup, train_sizes: list[int] | None, out: Path, name: str, verbose: bool,
           seed: int = 0) -> tuple[Path, float, int]:
    """One training run through the engine; returns (run folder, training seconds, optimiser steps)."""
    from archzoo.engine import TrainConfig, train
    from archzoo.engine.progress import RunConsole

    cfg = TrainConfig(
        model="resformer_tiny_patch16",
        model_kwargs=dict(setup.model_kwargs),
        data="digits",
        img_size=setup.single_size,
        methods=["multires"] if train_sizes else [],
        method_options={"multires": {"train_sizes": list(train_sizes)}} if train_sizes else {},
        epochs=setup.epochs,
        batch_size=setup.batch_size,
        max_steps=setup.max_steps,
        lr=setup.lr,
        warmup_epochs=setup.warmup_epochs,
        seed=seed,
        quiet=True,
    )
    res = train(cfg, output=out, name=name, console=RunConsole(enabled=verbose, quiet=True))
    return Path(res.run_dir), float(res.seconds), int(res.summary.get("global_step") or 0)


def _top1_by_size(run_dir: Path, sizes: tuple[int, ...], scratch: Path) -> dict[int, float]:
    """Test top-1 (percent) of the run's best checkpoint (selected on validation at the training size)
    at every test size: the digits are upsampled from 8x8 straight to each size."""
    from archzoo.engine import evaluate_checkpoint

    return {s: float(evaluate_checkpoint(run_dir, img_size=s, split="test", device="cpu",
                                         output=scratch / f"{run_dir.name}-{s}", quiet=True).result.metrics["acc"])
            for s in sizes}


def _params(run_dir: Path) -> int:
    from archzoo.checkpoint import read_state_dict
    from archzoo.engine import checkpoints as ck

    weights = read_state_dict(ck.resolve_checkpoint(run_dir).weights)
    return sum(v.numel() for k, v in weights.items() if v.is_floating_point() and "running_" not in k)


def multires_vs_single_res(budget: str = "full", out_dir: str | Path | None = None, *,
                           verbose: bool = False, seed: int = 0) -> dict[str, float]:
    """Test top-1 across test resolutions: single-resolution vs multi-resolution training (ResFormer).

    Claim (arXiv 2212.00776, abstract and the ImageNet comparison with DeiT across testing
    resolutions 96-640): a ViT trained at one resolution degrades sharply at resolutions not seen in
    training, while ResFormer's multi-resolution training with the scale-consistency loss keeps it
    accurate over a wide range of mostly unseen test resolutions (ResFormer-B-MR 75.86 % at 96 px and
    81.72 % at 640 px, 48 and 7.49 points above DeiT-B).

    Scaled down: ImageNet -> the embedded digits (1,257 training images, 8x8 upsampled), ResFormer-T ->
    a 4-block, 64-wide ResFormer with 8x8 patches (the authors' positional embeddings in both arms, so
    only the training recipe differs, as in the paper's MR-vs-single-resolution comparison of one
    architecture rather than its DeiT baseline), 224 -> 32 px, 128/160/224 -> 16/24/32, tests 96-640 ->
    8-64 px, 300 epochs -> 40 (1,560 optimiser steps per arm, batch 32, AdamW lr 3e-3, cosine, seed 0,
    same batches). Each arm's checkpoint with the best validation top-1 at 32 px is tested at every size.

    Returns ``sr_top1_<size>`` / ``mr_top1_<size>`` (percent), their means over all test sizes and over
    the sizes neither arm trained on (``*_unseen_mean_top1``), ``unseen_gain`` (MR - SR, points),
    ``mean_gain``, the lowest top-1 of each arm, ``params``, each arm's optimiser steps and training
    seconds (a multi-resolution step runs the model at every training size: ~1.8x the compute).
    ``budget="smoke"``: one 32-wide block, 3 steps per arm, tested at 8/16/24 px. ``seed`` (default 0)
    sets both arms' initial weights and batches (to see the run-to-run spread).
    """
    check_budget(budget)
    setup = _FULL if budget == "full" else _SMOKE
    seen = set(setup.train_sizes) | {setup.single_size}
    unseen = [s for s in setup.test_sizes if s not in seen]
    with tempfile.TemporaryDirectory(prefix="archzoo-claim-resformer-") as tmp:
        say(verbose, f"single-resolution training at {setup.single_size} px")
        sr_dir, sr_s, sr_steps = _train(setup, None, Path(tmp), "single", verbose, seed)
        say(verbose, f"multi-resolution training at {list(setup.train_sizes)} px")
        mr_dir, mr_s, mr_steps = _train(setup, list(setup.train_sizes), Path(tmp), "multi", verbose, seed)
        sr = _top1_by_size(sr_dir, setup.test_sizes, Path(tmp) / "eval")
        mr = _top1_by_size(mr_dir, setup.test_sizes, Path(tmp) / "eval")
        params = _params(mr_dir)

    def mean(d: dict[int, float], sizes) -> float:
        return sum(d[s] for s in sizes) / len(sizes)

    out: dict[str, float] = {}
    for s in setup.test_sizes:
        out[f"sr_top1_{s}"] = sr[s]
        out[f"mr_top1_{s}"] = mr[s]
    out["sr_mean_top1"] = mean(sr, setup.test_sizes)
    out["mr_mean_top1"] = mean(mr, setup.test_sizes)
    out["sr_unseen_mean_top1"] = mean(sr, unseen)
    out["mr_unseen_mean_top1"] = mean(mr, unseen)
    out["unseen_gain"] = out["mr_unseen_mean_top1"] - out["sr_unseen_mean_top1"]
    out["mean_gain"] = out["mr_mean_top1"] - out["sr_mean_top1"]
    out["sr_top1_min"] = min(sr.values())
    out["mr_top1_min"] = min(mr.values())
    out["params"] = float(params)
    out["unseen_sizes"] = float(len(unseen))
    out["sr_steps"] = float(sr_steps)
    out["mr_steps"] = float(mr_steps)
    out["sr_train_seconds"] = sr_s
    out["mr_train_seconds"] = mr_s
    say(verbose, "  ".join(f"{s}px SR {sr[s]:.1f} MR {mr[s]:.1f}" for s in setup.test_sizes))

    if out_dir is not None:
        fig, ax = new_figure(figsize=(7.0, 4.2))
        xs = list(setup.test_sizes)
        ax.plot(xs, [sr[s] for s in xs], "o-", label=f"single resolution ({setup.single_size} px)")
        ax.plot(xs, [mr[s] for s in xs], "s-",
                label=f"multi-resolution {'/'.join(map(str, setup.train_sizes))} px + SCC")
        for s in sorted(seen):
            ax.axvline(s, color="0.85", lw=6, zorder=0)
        ax.set_xticks(xs)
        ax.set_xlabel("test resolution (px); shaded: trained on")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"ResFormer on digits: unseen-size mean {out['sr_unseen_mean_top1']:.1f} -> "
                     f"{out['mr_unseen_mean_top1']:.1f} %")
        ax.set_ylim(0, 118)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", ncol=2, fontsize="small")
        save_figure(fig, out_dir, "resformer_multires.png")
    return out
