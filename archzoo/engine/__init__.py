"""Training and evaluation engine of ``archzoo train`` / ``archzoo eval`` (plain PyTorch).

- :mod:`archzoo.engine.config`: :class:`TrainConfig`, the resolved options of a run;
- :mod:`archzoo.engine.loop`: :func:`train` (timm's optimizer and scheduler factories, label
  smoothing, gradient clipping, EMA, mixed precision, channels_last, exact resumption);
- :mod:`archzoo.engine.ddp`: torchrun / DistributedDataParallel support;
- :mod:`archzoo.engine.checkpoints`: atomic checkpoint folders (safetensors weights + weights-only state);
- :mod:`archzoo.engine.evaluate`: top-1/top-5, per-class accuracy, confusion matrix;
- :mod:`archzoo.engine.plots`: ``curves.png`` and confusion-matrix figures.
"""
from __future__ import annotations

from archzoo.engine.config import DEFAULT_MODEL, ConfigError, TrainConfig
from archzoo.engine.evaluate import EvalResult, evaluate
from archzoo.engine.loop import TrainResult, train

__all__ = ["DEFAULT_MODEL", "ConfigError", "TrainConfig", "TrainResult", "EvalResult", "evaluate", "train"]
