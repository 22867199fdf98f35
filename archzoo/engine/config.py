"""The resolved configuration of a training run (written to the run folder as ``config.json``).

:class:`TrainConfig` holds what every run has (model, data, optimisation, hardware, run folder); the
task's and the methods' own options live in ``task_options`` and ``method_options`` as plain dicts,
validated by their option dataclasses (:mod:`archzoo.engine.plugins`). Each field's ``metadata``
gives its ``archzoo train`` flag (argparse ``dest`` = field name), so no flag table is kept by hand.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from archzoo.errors import ConfigError

__all__ = ["TrainConfig", "ConfigError", "DEFAULT_MODEL", "DEFAULT_TASK", "RESUME_OVERRIDABLE"]

# The default task, and its default model (see archzoo.tasks.classification).
DEFAULT_TASK = "classification"
DEFAULT_MODEL = "simplenet_cifar_310k"

# Fields a resumed run may change: they do not alter what is computed.
RESUME_OVERRIDABLE = ("quiet", "workers", "eval_batch_size", "device", "max_steps")


def _opt(default: Any = None, help: str = "", group: str = "optimisation", **meta: Any) -> Any:
    md = {"help": help, "group": group, **meta}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=md)
    return field(default=default, metadata=md)


@dataclass
class TrainConfig:
    """Everything that determines a run. Defaults are the ones of ``archzoo train`` with no flags."""

    # -- what is trained ---------------------------------------------------------------------------
    task: str = _opt("classification", "what is learned: a registered task (see `archzoo train --list`)", "task and methods")
    methods: list[str] = _opt([], "a registered training method; repeat for several (applied in order)",
                              "task and methods", flag="--method", repeat=True, metavar="NAME")
    task_options: dict[str, Any] = _opt({}, cli=False)
    method_options: dict[str, dict[str, Any]] = _opt({}, cli=False)
    plugins: list[str] = _opt([], "import this module or .py file first (it may register tasks and methods); "
                              "recorded, so --resume and `archzoo eval` load it again", "task and methods", flag="--plugin",
                              repeat=True, metavar="MODULE_OR_FILE")
    # None: the task's default model (classification: SimpleNet's slim CIFAR network, arXiv:1608.06037,
    # 312 K parameters at 10 classes; 98.5-99.3 % test top-1 on digits in 6 epochs, ~2 CPU-minutes)
    model: str | None = _opt(None, "model name, see `archzoo list` (default: the task's)", "model and data")
    data: str = _opt("digits", "digits (default), imagefolder:PATH, cifar10[:ROOT], cifar100[:ROOT], synthetic[:k=v,...]",
                     "model and data")
    img_size: int | None = _opt(None, "input side in pixels (default: the task's or a method's, else 32)", "model and data")
    in_chans: int = _opt(3, "input channels (digits also take 1)", "model and data")
    download: bool = _opt(False, "allow downloading cifar10/cifar100", "model and data")
    augment: bool = _opt(True, "training augmentation", "model and data", flag="--aug")
    model_kwargs: dict[str, Any] = _opt({}, cli=False)
    drop_path: float = _opt(0.0, "stochastic depth rate, for models that take drop_path_rate", "model and data")
    init_checkpoint: str | None = _opt(None, "start from these weights (archzoo's, timm's or the authors'); a "
                                       "classifier of another size is re-initialised", "model and data", metavar="PATH")
    # -- optimisation ------------------------------------------------------------------------------
    epochs: int = _opt(6)
    batch_size: int = _opt(64, "per process")
    opt: str = _opt("adamw", "timm optimizer name (e.g. sgd, adam, lamb)")
    lr: float = _opt(1e-2, "peak learning rate (tuned for the default small CNN; transformers want ~1e-3 or less)")
    weight_decay: float = _opt(0.05, "not on biases and norms")
    momentum: float = _opt(0.9, "for SGD-like optimizers")
    sched: str = _opt("cosine", "timm schedule", choices=("cosine", "step", "multistep", "plateau", "poly", "tanh", "none"))
    warmup_epochs: int = _opt(1, "linear warm-up")
    warmup_lr: float = _opt(1e-5)
    min_lr: float = _opt(1e-5)
    clip_grad: float | None = _opt(None, "clip the gradient norm to this value (default: off)")
    ema: bool = _opt(False, "keep an EMA of the weights; it is what gets validated and saved as best")
    ema_decay: float = _opt(0.998, "with warm-up")
    seed: int = _opt(0)
    # -- hardware ----------------------------------------------------------------------------------
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N", "hardware")
    amp: str = _opt("auto", "mixed precision: auto = bf16 on GPUs that have it, fp16 on older ones, off on the CPU",
                    "hardware", choices=("auto", "off", "bf16", "fp16"))
    channels_last: bool = _opt(True, "channels_last memory format", "hardware")
    threads: int | None = _opt(None, "CPU threads (default: torch's; recorded so --resume matches)", "hardware")
    workers: int = _opt(0, "data-loader processes", "hardware")
    deterministic: bool = _opt(False, "deterministic cuDNN/cuBLAS kernels", "hardware")
    eval_batch_size: int = _opt(256, "", "hardware")
    # -- run folder --------------------------------------------------------------------------------
    ckpt_steps: int = _opt(0, "also save last/ every N steps inside an epoch (0: epoch ends only)", "run folder")
    max_steps: int = _opt(0, "stop after N optimizer steps in all, validating and checkpointing where it stops (the "
                          "schedule still spans --epochs; --resume with a larger value or 0 goes on); 0: no limit", "run folder")
    quiet: bool = _opt(False, "no progress bars or tables: plain lines for logs/CI", "run folder")

    # ---------------------------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Raise :class:`ConfigError` naming the first bad option (the task's and methods' options
        are validated by their own dataclasses when the run is set up)."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        def num(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        def posint(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool) and v >= 1

        need(isinstance(self.task, str) and bool(self.task), "--task must name a task")
        need(isinstance(self.methods, list) and all(isinstance(m, str) and m for m in self.methods),
             f"--method must name methods, got {self.methods!r}")
        need(len(set(self.methods)) == len(self.methods), f"--method names a method twice: {self.methods}")
        need(self.model is None or (isinstance(self.model, str) and bool(self.model)), "--model must name a model")
        need(posint(self.epochs), f"--epochs must be a positive integer, got {self.epochs}")
        need(posint(self.batch_size), f"--batch-size must be a positive integer, got {self.batch_size}")
        need(posint(self.eval_batch_size), f"--eval-batch-size must be a positive integer, got {self.eval_batch_size}")
        need(self.img_size is None or posint(self.img_size), f"--img-size must be a positive integer, got {self.img_size}")
        need(posint(self.in_chans), f"--in-chans must be a positive integer, got {self.in_chans}")
        need(num(self.lr) and self.lr > 0, f"--lr must be a positive number, got {self.lr}")
        need(num(self.warmup_lr) and self.warmup_lr >= 0, f"--warmup-lr must be >= 0, got {self.warmup_lr}")
        need(num(self.min_lr) and self.min_lr >= 0, f"--min-lr must be >= 0, got {self.min_lr}")
        need(num(self.weight_decay) and self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        need(num(self.momentum) and 0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}")
        need(isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs,
             f"--warmup-epochs must be an integer >= 0, got {self.warmup_epochs}")
        need(self.clip_grad is None or (num(self.clip_grad) and self.clip_grad > 0),
             f"--clip-grad must be a positive number, got {self.clip_grad}")
        need(num(self.ema_decay) and 0 < self.ema_decay < 1, f"--ema-decay must be in (0, 1), got {self.ema_decay}")
        need(num(self.drop_path) and 0 <= self.drop_path < 1, f"--drop-path must be in [0, 1), got {self.drop_path}")
        need(self.amp in ("auto", "off", "bf16", "fp16"), f"--amp must be auto, off, bf16 or fp16, got {self.amp!r}")
        need(isinstance(self.seed, int) and self.seed >= 0, f"--seed must be an integer >= 0, got {self.seed}")
        need(self.threads is None or posint(self.threads), f"--threads must be a positive integer, got {self.threads}")
        need(isinstance(self.workers, int) and self.workers >= 0, f"--workers must be >= 0, got {self.workers}")
        need(isinstance(self.ckpt_steps, int) and self.ckpt_steps >= 0, f"--ckpt-steps must be >= 0, got {self.ckpt_steps}")
        need(isinstance(self.max_steps, int) and self.max_steps >= 0, f"--max-steps must be >= 0, got {self.max_steps}")
        need(isinstance(self.opt, str) and bool(self.opt), "--opt must name an optimizer")
        need(isinstance(self.task_options, dict), "task_options must be a table")
        need(isinstance(self.method_options, dict) and all(isinstance(v, dict) for v in self.method_options.values()),
             "method_options must map method names to tables")
        stray = sorted(set(self.method_options) - set(self.methods))
        need(not stray, f"options given for method(s) {', '.join(stray)} that the run does not use (add --method)")
        if self.opt.lower() not in _optimizers():
            raise ConfigError(f"unknown optimizer {self.opt!r} (timm's: adamw, sgd, adam, lamb, ...)")
        if self.sched not in ("cosine", "step", "multistep", "plateau", "poly", "tanh", "none"):
            raise ConfigError(f"unknown schedule {self.sched!r} (cosine, step, multistep, poly, tanh, none)")
        return self

    # ---------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}")
        return cls(**d)

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "TrainConfig":
        p = Path(run_dir) / "config.json"
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{run_dir} is not an archzoo run folder (no config.json)") from None
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read {p}: {e}") from None
        return cls.from_dict(raw.get("train", raw))


def _optimizers() -> set[str]:
    from timm.optim import list_optimizers

    return {n.lower() for n in list_optimizers()}
