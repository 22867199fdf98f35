"""Where a run stands, as one object saved in one file of each checkpoint (``state.pt``).

:class:`TrainState` holds everything a resumed run needs besides the weights: the position (epoch,
step inside it, global step), the running sums of the epoch's training logs on every rank, the
metrics history, the best evaluation so far, every rank's random generators, and the optimizer,
scheduler and grad-scaler states. It is written with ``torch.save`` as plain data and read back with
``torch.load(weights_only=True)``, so loading a checkpoint never unpickles objects.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archzoo.errors import CheckpointError
from archzoo.io import load_torch, save_torch

__all__ = ["TrainState", "STATE_FILE", "STATE_VERSION"]

STATE_FILE = "state.pt"
STATE_VERSION = 2


@dataclass
class TrainState:
    epoch: int = 0                 # epochs completed (the epoch in progress when step_in_epoch > 0)
    step_in_epoch: int = 0         # optimizer steps done inside that epoch
    global_step: int = 0
    steps_per_epoch: int = 0
    world_size: int = 1
    log_keys: list[str] = field(default_factory=list)   # what each rank's sums hold: [*keys, "n"]
    sums: list[list[float]] = field(default_factory=list)  # per rank: sum of value x n per key, then n
    history: list[dict[str, Any]] = field(default_factory=list)  # metrics.csv rows
    best: dict[str, Any] = field(default_factory=dict)   # {"epoch", "metric", "value"} of the best evaluation
    rng: list[dict[str, Any]] = field(default_factory=list)  # per rank (archzoo.engine.checkpoints.rng_state)
    optimizer: dict[str, Any] | None = None
    scheduler: dict[str, Any] | None = None
    scaler: dict[str, Any] | None = None

    @property
    def epochs_done(self) -> float:
        return self.epoch + self.step_in_epoch / max(self.steps_per_epoch or 1, 1)

    def save(self, directory: str | Path) -> Path:
        return save_torch({"version": STATE_VERSION, **dataclasses.asdict(self)}, Path(directory) / STATE_FILE)

    @classmethod
    def load(cls, directory: str | Path) -> "TrainState":
        p = Path(directory) / STATE_FILE
        if not p.is_file():
            raise CheckpointError(f"checkpoint {directory} has no {STATE_FILE}: it cannot be resumed")
        try:
            raw = load_torch(p)
        except Exception as e:  # corrupt, or not plain data
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise CheckpointError(f"cannot read {p} with weights_only=True: {msg}") from None
        if not isinstance(raw, dict) or raw.get("version") != STATE_VERSION:
            raise CheckpointError(f"{p} is not a training state of this archzoo version "
                                  f"(version {raw.get('version') if isinstance(raw, dict) else None!r}, want {STATE_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})
