"""Image classification: the task every backbone of the collection is trained and evaluated with.

Data from archzoo's dataset registry (``digits``, ``imagefolder:PATH``, ``cifar10``, ``synthetic``);
the model is ``create_model(name, num_classes=..., in_chans=...)`` checked against the input size
before any file is written; the loss is cross-entropy with label smoothing; evaluation reports the
loss, top-1 and top-5 accuracy, per-class accuracy and the confusion matrix, all from torchmetrics
(reduced over DDP ranks by torchmetrics itself), and saves the confusion matrix as a PNG.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archzoo.engine.plugins import EvalOutput, StepOutput, Task, register_task
from archzoo.errors import ConfigError

__all__ = ["ClassificationTask"]


@register_task("classification")
class ClassificationTask(Task):
    """Cross-entropy training and top-1/top-5 evaluation of an image classifier."""

    @dataclass
    class Options:
        label_smoothing: float = field(default=0.1, metadata={"help": "label smoothing of the training loss",
                                                              "flag": "--smoothing"})
        # timm's initialisations are scaled for 1,000 classes (EfficientNet-style heads draw
        # U(+-1/sqrt(classes))): with 10 classes the first logits reach +-10 and MobileNetV2 spends
        # epochs unlearning them; a zero classifier starts from uniform predictions.
        zero_head: bool = field(default=True, metadata={"help": "start the classifier at zero (timm's head inits "
                                                                "are scaled for 1,000 classes)"})

        def validate(self) -> None:
            s = self.label_smoothing
            if not (0 <= s < 1):
                raise ConfigError(f"--smoothing must be in [0, 1), got {s}")

    default_model = "simplenet_cifar_310k"
    primary = "acc"
    primary_label = "top-1 accuracy (%)"
    mode = "max"
    train_logs = ("loss", "acc")
    eval_keys = ("loss", "acc", "top5")

    def __init__(self, options: Any, cfg: Any) -> None:
        super().__init__(options, cfg)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=options.label_smoothing)

    # -- data and model ----------------------------------------------------------------------------
    def build_data(self, splits: Sequence[str] = ("train", "val", "test")) -> Any:
        from archzoo.data import DataOptions, build_data

        c = self.cfg
        return build_data(c.data, DataOptions(c.img_size, c.in_chans, c.download, c.augment, splits=tuple(splits)))

    def model_kwargs(self, data: Any) -> dict[str, Any]:
        from archzoo.engine.modeling import resolve_model_kwargs

        extra = dict(self.cfg.model_kwargs)
        if self.cfg.drop_path:
            extra["drop_path_rate"] = self.cfg.drop_path
        return resolve_model_kwargs(self.cfg.model, data.num_classes, self.cfg.in_chans, self.cfg.img_size, extra)

    def build_model(self, kwargs: dict[str, Any]) -> nn.Module:
        from archzoo.engine.modeling import build_model

        return build_model(self.cfg.model, kwargs)

    def init_weights(self, model: nn.Module, init_checkpoint: str | None) -> list[str]:
        from archzoo.engine.modeling import load_init_checkpoint, zero_classifier

        notes = []
        skipped: list[str] = []
        if init_checkpoint:
            skipped = load_init_checkpoint(model, init_checkpoint, self.cfg.model)
            notes.append(f"initialised from {init_checkpoint}" + (f"; new classifier: {', '.join(skipped)}" if skipped else ""))
        if self.options.zero_head and (skipped or not init_checkpoint):
            zero_classifier(model, only=skipped or None)
        return notes

    # -- training ----------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any) -> StepOutput:
        x, y = batch
        logits = model(x)
        loss = self.criterion(logits, y)
        return StepOutput(loss, self.step_logs(loss, logits, y), int(y.numel()))

    def step_logs(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
        """The logged values of a step: its loss and top-1 accuracy in percent (methods that compute
        the logits themselves, like multi-resolution training, log through this too)."""
        return {"loss": loss.detach(), "acc": 100.0 * (logits.detach().argmax(1) == y).float().mean()}

    # -- evaluation --------------------------------------------------------------------------------
    def eval_metrics(self, data: Any) -> Mapping[str, Any]:
        from torchmetrics import MeanMetric
        from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

        k = data.num_classes
        return nn.ModuleDict({
            "loss": MeanMetric(),
            "acc": MulticlassAccuracy(k, top_k=1, average="micro", validate_args=False),
            "top5": MulticlassAccuracy(k, top_k=min(5, k), average="micro", validate_args=False),
            "confusion": MulticlassConfusionMatrix(k, validate_args=False),
        })

    def eval_step(self, model: nn.Module, batch: Any, metrics: Mapping[str, Any]) -> int:
        x, y = batch
        logits = model(x).float()
        metrics["loss"].update(F.cross_entropy(logits, y, reduction="none"))
        metrics["acc"].update(logits, y)
        metrics["top5"].update(logits, y)
        metrics["confusion"].update(logits, y)
        return int(y.numel())

    def summarize(self, computed: dict[str, torch.Tensor], data: Any, n: int) -> EvalOutput:
        conf = computed["confusion"].long().cpu()
        per_n = conf.sum(dim=1)
        names = list(data.class_names)
        per_class = {str(names[i]): (100.0 * int(conf[i, i]) / int(per_n[i]) if int(per_n[i]) else None)
                     for i in range(conf.shape[0])}
        k = min(5, data.num_classes)
        metrics = {
            "loss": float(computed["loss"]),
            "acc": 100.0 * float(computed["acc"]),
            "top5": 100.0 * float(computed["top5"]),
        }
        return EvalOutput(metrics, {"top_k": k, "per_class": per_class, "confusion": conf.tolist(),
                                    "class_names": names}, int(conf.sum()))

    def save_results(self, out: EvalOutput, data: Any, directory: Path, tag: str, title: str = "") -> list[Path]:
        from archzoo.engine.plots import plot_confusion

        return [plot_confusion(out.details["confusion"], out.details["class_names"],
                               Path(directory) / f"{tag}-confusion.png",
                               title=title or f"top-1 {out.metrics['acc']:.2f}%")]

    def describe_result(self, out: EvalOutput) -> str:
        k = out.details.get("top_k", 5)
        return f"top-1 {out.metrics['acc']:.2f}%  top-{k} {out.metrics['top5']:.2f}%  loss {out.metrics['loss']:.4f}"
