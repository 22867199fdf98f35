"""The resolved configuration of a training run (written to the run folder as ``config.json``)."""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "ConfigError", "DEFAULT_MODEL", "RESUME_OVERRIDABLE"]

# The default model: see TrainConfig.model.
DEFAULT_MODEL = "simplenet_cifar_310k"

# Fields a resumed run may change: they do not alter what is computed.
RESUME_OVERRIDABLE = ("quiet", "workers", "eval_batch_size", "device", "max_steps")


class ConfigError(ValueError):
    """An invalid training option (one line, names the option)."""


@dataclass
class TrainConfig:
    """Everything that determines a run. Defaults are the ones of ``archzoo train`` with no flags."""

    # SimpleNet's slim CIFAR network (arXiv:1608.06037; 312 K parameters at 10 classes): a plain
    # conv3x3-BN-ReLU stack made for 32x32 inputs. On digits with these defaults: 98.5-99.3 % test
    # top-1 in 6 epochs (~2 CPU-minutes). MobileNetV2 (mobilenetv2_050), tuned likewise, needed
    # 15 epochs and the same CPU time for 97.0 %: at 32x32 its stride-32 body ends on a 1x1 map.
    model: str = DEFAULT_MODEL
    data: str = "digits"
    img_size: int = 32
    in_chans: int = 3
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    drop_path: float = 0.0
    # The classifier starts at zero (uniform predictions). timm's initialisations are scaled for
    # 1,000 classes (EfficientNet-style heads draw U(+-1/sqrt(classes))): with 10 classes the first
    # logits reach +-10 and MobileNetV2 spends epochs unlearning them.
    zero_head: bool = True
    epochs: int = 6
    batch_size: int = 64  # per process
    opt: str = "adamw"
    lr: float = 1e-2  # tuned for the default small CNN; transformers usually want ~1e-3 or less
    weight_decay: float = 0.05
    momentum: float = 0.9
    sched: str = "cosine"
    warmup_epochs: int = 1
    warmup_lr: float = 1e-5
    min_lr: float = 1e-5
    label_smoothing: float = 0.1
    clip_grad: float | None = None
    ema: bool = False
    ema_decay: float = 0.998
    amp: str = "auto"  # auto | off | bf16 | fp16
    channels_last: bool = True
    augment: bool = True
    seed: int = 0
    threads: int | None = None
    workers: int = 0
    ckpt_steps: int = 0  # also checkpoint every N steps inside an epoch (0: epoch ends only)
    max_steps: int = 0  # stop after this many optimizer steps in all (0: run every epoch); smoke runs, timing
    eval_batch_size: int = 256
    download: bool = False
    device: str = "auto"
    deterministic: bool = False
    init_checkpoint: str | None = None
    quiet: bool = False
    # ConvBN paper (P25): "tune" fine-tunes with frozen BatchNorm statistics at Tune mode's memory cost
    convbn: str | None = None  # None | eval | tune
    freeze_bn: bool = False
    # ResFormer (P37): multi-resolution training with the scale-consistency loss
    train_sizes: list[int] | None = None
    consistency_weight: float = 1.0

    # ---------------------------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Raise :class:`ConfigError` naming the first bad option."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        def num(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        need(isinstance(self.model, str) and bool(self.model), "--model must name a model")
        need(isinstance(self.epochs, int) and self.epochs >= 1, f"--epochs must be a positive integer, got {self.epochs}")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1,
             f"--batch-size must be a positive integer, got {self.batch_size}")
        need(isinstance(self.eval_batch_size, int) and self.eval_batch_size >= 1,
             f"--eval-batch-size must be a positive integer, got {self.eval_batch_size}")
        need(isinstance(self.img_size, int) and self.img_size >= 1, f"--img-size must be a positive integer, got {self.img_size}")
        need(isinstance(self.in_chans, int) and self.in_chans >= 1, f"--in-chans must be a positive integer, got {self.in_chans}")
        need(num(self.lr) and self.lr > 0, f"--lr must be a positive number, got {self.lr}")
        need(num(self.warmup_lr) and self.warmup_lr >= 0, f"--warmup-lr must be >= 0, got {self.warmup_lr}")
        need(num(self.min_lr) and self.min_lr >= 0, f"--min-lr must be >= 0, got {self.min_lr}")
        need(num(self.weight_decay) and self.weight_decay >= 0, f"--weight-decay must be >= 0, got {self.weight_decay}")
        need(num(self.momentum) and 0 <= self.momentum < 1, f"--momentum must be in [0, 1), got {self.momentum}")
        need(isinstance(self.warmup_epochs, int) and 0 <= self.warmup_epochs,
             f"--warmup-epochs must be an integer >= 0, got {self.warmup_epochs}")
        need(num(self.label_smoothing) and 0 <= self.label_smoothing < 1,
             f"--smoothing must be in [0, 1), got {self.label_smoothing}")
        need(self.clip_grad is None or (num(self.clip_grad) and self.clip_grad > 0),
             f"--clip-grad must be a positive number, got {self.clip_grad}")
        need(num(self.ema_decay) and 0 < self.ema_decay < 1, f"--ema-decay must be in (0, 1), got {self.ema_decay}")
        need(num(self.drop_path) and 0 <= self.drop_path < 1, f"--drop-path must be in [0, 1), got {self.drop_path}")
        need(self.convbn in (None, "eval", "tune"), f"--convbn must be eval or tune, got {self.convbn!r}")
        need(self.train_sizes is None or (len(self.train_sizes) >= 1 and all(isinstance(t, int) and t > 0 for t in self.train_sizes)),
             f"--train-sizes must be positive integers, got {self.train_sizes}")
        need(num(self.consistency_weight) and self.consistency_weight >= 0,
             f"--consistency-weight must be >= 0, got {self.consistency_weight}")
        need(self.amp in ("auto", "off", "bf16", "fp16"), f"--amp must be auto, off, bf16 or fp16, got {self.amp!r}")
        need(isinstance(self.seed, int) and self.seed >= 0, f"--seed must be an integer >= 0, got {self.seed}")
        need(self.threads is None or (isinstance(self.threads, int) and self.threads >= 1),
             f"--threads must be a positive integer, got {self.threads}")
        need(isinstance(self.workers, int) and self.workers >= 0, f"--workers must be >= 0, got {self.workers}")
        need(isinstance(self.ckpt_steps, int) and self.ckpt_steps >= 0, f"--ckpt-steps must be >= 0, got {self.ckpt_steps}")
        need(isinstance(self.max_steps, int) and self.max_steps >= 0, f"--max-steps must be >= 0, got {self.max_steps}")
        need(isinstance(self.opt, str) and bool(self.opt), "--opt must name an optimizer")
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
