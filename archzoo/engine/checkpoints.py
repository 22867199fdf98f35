"""Run checkpoints: a folder per checkpoint (``last/``, ``best/``), swapped in atomically.

A checkpoint folder holds

- ``model.safetensors``: the weights (the EMA weights in ``best/`` when the run keeps an EMA, since
  those are the ones it validated), loadable by ``archzoo.load_checkpoint`` / ``archzoo eval``;
- ``ema.safetensors``: the EMA weights, in ``last/`` of a run with ``--ema``;
- ``state.pt``: the run's :class:`archzoo.engine.state.TrainState` (position, training-log sums,
  history, best, every rank's RNG, optimizer/scheduler/grad-scaler), plain data read back with
  ``torch.load(weights_only=True)`` (never unpickles objects);
- ``meta.json``: what the weights are (format, task, model name and ``create_model`` kwargs), for
  ``archzoo eval`` and ``archzoo.load_checkpoint`` to rebuild the model without reading ``state.pt``.

Several files must change together, so a checkpoint is written into a temporary folder that is then
renamed into place (``last`` -> ``.last.old``, temp -> ``last``, drop ``.last.old``). A SIGKILL at any
moment leaves either the old or the new checkpoint complete; :func:`find_checkpoint` recovers
``.last.old`` if the kill fell between the two renames.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archzoo.engine.state import TrainState
from archzoo.errors import CheckpointError
from archzoo.io import save_safetensors, write_json

__all__ = [
    "CHECKPOINT_FORMAT",
    "save_checkpoint_dir",
    "find_checkpoint",
    "read_meta",
    "rng_state",
    "set_rng_state",
    "resolve_checkpoint",
    "ResolvedCheckpoint",
    "clean_stale_temp",
    "model_weights",
]

CHECKPOINT_FORMAT = "archzoo-checkpoint/2"
WEIGHTS = "model.safetensors"
EMA_WEIGHTS = "ema.safetensors"
META = "meta.json"


def rng_state() -> dict[str, Any]:
    """This process's random generators (torch CPU and CUDA, Python, NumPy), weights_only-loadable."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(v) for v in internal.tolist()), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _checkpoint_paths(run_dir: Path, name: str) -> tuple[Path, Path]:
    return run_dir / name, run_dir / f".{name}.old"


def clean_stale_temp(run_dir: Path) -> None:
    """Remove temporary checkpoint folders a killed run left behind."""
    for p in run_dir.glob(".*.tmp-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def save_checkpoint_dir(
    run_dir: str | Path,
    name: str,
    *,
    weights: dict[str, torch.Tensor],
    meta: dict[str, Any],
    state: TrainState | None = None,
    ema_weights: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Write checkpoint ``run_dir/name/`` atomically (see the module docstring)."""
    run_dir = Path(run_dir)
    final, old = _checkpoint_paths(run_dir, name)
    tmp = run_dir / f".{name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        str_meta = {"format": CHECKPOINT_FORMAT, "model": str(meta.get("model", ""))}
        save_safetensors(weights, tmp / WEIGHTS, metadata=str_meta)
        if ema_weights is not None:
            save_safetensors(ema_weights, tmp / EMA_WEIGHTS, metadata=str_meta)
        if state is not None:
            state.save(tmp)
        write_json(tmp / META, {"format": CHECKPOINT_FORMAT, **meta})
        if final.exists():
            if old.exists():
                shutil.rmtree(old)
            os.rename(final, old)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(run_dir: str | Path, name: str) -> Path | None:
    """``run_dir/name`` if complete, else ``run_dir/.name.old`` (a kill between renames), else None."""
    final, old = _checkpoint_paths(Path(run_dir), name)
    for p in (final, old):
        if (p / META).is_file() and (p / WEIGHTS).is_file():
            return p
    return None


def read_meta(ckpt_dir: str | Path) -> dict[str, Any]:
    p = Path(ckpt_dir) / META
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"cannot read {p}: {e}") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p} is not an archzoo checkpoint (format {meta.get('format')!r})")
    return meta


class ResolvedCheckpoint:
    """What ``archzoo eval --checkpoint PATH`` points at: a weights file, and the run around it."""

    def __init__(self, weights: Path, run_dir: Path | None, meta: dict[str, Any] | None) -> None:
        self.weights = weights
        self.run_dir = run_dir
        self.meta = meta

    @property
    def config(self) -> dict[str, Any] | None:
        if self.run_dir is None:
            return None
        p = self.run_dir / "config.json"
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None


def resolve_checkpoint(path: str | Path) -> ResolvedCheckpoint:
    """Accept a run folder (-> its ``best/``), a checkpoint folder, a file inside one, or any weights file."""
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {p}")
    if p.is_dir():
        if (p / "config.json").is_file():  # a run folder
            found = find_checkpoint(p, "best") or find_checkpoint(p, "last")
            if found is None:
                raise CheckpointError(f"run {p} has no checkpoint yet (no best/ or last/)")
            p = found
        if not (p / WEIGHTS).is_file():
            raise CheckpointError(f"{p} is a folder without {WEIGHTS}: not an archzoo checkpoint")
        p = p / WEIGHTS
    ckpt_dir = p.parent
    meta = None
    run_dir = None
    if (ckpt_dir / META).is_file():
        meta = read_meta(ckpt_dir)
        if (ckpt_dir.parent / "config.json").is_file():
            run_dir = ckpt_dir.parent
    return ResolvedCheckpoint(p, run_dir, meta)


def model_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict to save: DDP's ``module.`` unwrapped, tensors moved to the CPU."""
    m = model.module if hasattr(model, "module") and isinstance(getattr(model, "module"), nn.Module) else model
    return {k: v.detach().cpu() for k, v in m.state_dict().items()}
