"""Training and evaluation engine of ``archzoo train`` / ``archzoo eval`` (plain PyTorch).

- :mod:`archzoo.engine.plugins`: :class:`Task` and :class:`Method`, registered by name, which bring
  everything task- or method-specific (data, model, loss, metrics, figures; model and step changes);
- :mod:`archzoo.engine.config`: :class:`TrainConfig`, the resolved options of a run;
- :mod:`archzoo.engine.loop`: :func:`train` (timm's optimizer and scheduler factories, gradient
  clipping, EMA, mixed precision, channels_last, exact resumption, DDP);
- :mod:`archzoo.engine.state`: :class:`TrainState`, where a run stands, saved in one file;
- :mod:`archzoo.engine.checkpoints`: atomic checkpoint folders (safetensors weights + the state);
- :mod:`archzoo.engine.evaluate`: a task's metrics over a loader; :func:`evaluate_checkpoint`;
- :mod:`archzoo.engine.ddp`: torchrun / DistributedDataParallel support;
- :mod:`archzoo.engine.plots`: ``curves.png`` and confusion-matrix figures.
"""
from __future__ import annotations

from archzoo.engine.config import DEFAULT_MODEL, DEFAULT_TASK, TrainConfig
from archzoo.engine.evaluate import CheckpointEvaluation, evaluate, evaluate_checkpoint
from archzoo.engine.loop import TrainResult, epochs_done, train
from archzoo.engine.plugins import (
    EvalOutput,
    Method,
    StepOutput,
    Task,
    get_method,
    get_task,
    list_methods,
    list_tasks,
    register_method,
    register_task,
)
from archzoo.engine.state import TrainState
from archzoo.errors import ConfigError

__all__ = [
    "DEFAULT_MODEL", "DEFAULT_TASK", "ConfigError", "TrainConfig", "TrainResult", "TrainState", "EvalOutput",
    "CheckpointEvaluation", "evaluate", "evaluate_checkpoint", "epochs_done", "train", "Task", "Method", "StepOutput",
    "register_task", "register_method", "get_task", "get_method", "list_tasks", "list_methods",
]
