"""A task and a method that exist only in the tests: they prove that the engine takes plug-ins it
has never heard of (``archzoo train --plugin tests/engine/denoise_plugin.py --task denoise-digits
--method loss-weight``), without a change to ``archzoo/engine``.

- task ``denoise-digits``: scikit-learn's 8x8 digits in [0, 1], upsampled to the input size, with
  Gaussian noise drawn per (seed, epoch, sample) for training and per sample for evaluation; a small
  convolutional denoiser predicts the clean image; MSE loss; PSNR (torchmetrics) is the primary metric;
- method ``loss-weight``: multiplies the task's loss by a constant and logs the unweighted loss.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from archzoo.data.registry import DataBundle
from archzoo.data.seeded import sample_seed
from archzoo.engine.plugins import EvalOutput, Method, StepOutput, Task, register_method, register_task
from archzoo.errors import ConfigError


class NoisyDigits(Dataset):
    def __init__(self, images: torch.Tensor, noise: float, train: bool) -> None:
        self.images, self.noise, self.train = images, noise, train
        self.seed, self.epoch = 0, 0

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.images[i]
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch if self.train else 0, int(i)))
        return clean + self.noise * torch.randn(clean.shape, generator=g), clean


class Denoiser(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                                  nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)  # predicts the noise to remove


@register_task("denoise-digits")
class DenoiseDigits(Task):
    """Denoising of scikit-learn's digits, scored by PSNR (a test-only task)."""

    @dataclass
    class Options:
        noise: float = field(default=0.3, metadata={"help": "noise standard deviation"})
        width: int = field(default=8, metadata={"help": "denoiser channels"})

        def validate(self) -> None:
            if self.noise <= 0:
                raise ConfigError(f"--noise must be > 0, got {self.noise}")

    default_model = "denoiser"
    default_img_size = 16
    primary = "psnr"
    mode = "max"
    primary_label = "PSNR (dB)"
    train_logs = ("loss",)
    eval_keys = ("loss", "psnr")

    def build_data(self, splits: Sequence[str] = ("train", "val", "test")) -> Any:
        from sklearn.datasets import load_digits

        x = torch.from_numpy(load_digits().images.astype(np.float32) / 16.0)[:, None]
        x = F.interpolate(x, size=(self.cfg.img_size, self.cfg.img_size), mode="bilinear", align_corners=False)
        parts = {"train": x[:600], "val": x[600:700], "test": x[700:800]}
        return DataBundle(spec=self.cfg.data, num_classes=0, class_names=[], input_size=(1, self.cfg.img_size, self.cfg.img_size),
                          mean=(0.0,), std=(1.0,),
                          splits={s: NoisyDigits(parts[s], self.options.noise, s == "train") for s in splits})

    def model_kwargs(self, data: Any) -> dict[str, Any]:
        return {"width": self.options.width}

    def build_model(self, kwargs: dict[str, Any]) -> nn.Module:
        return Denoiser(**kwargs)

    def training_step(self, model: nn.Module, batch: Any) -> StepOutput:
        noisy, clean = batch
        loss = F.mse_loss(model(noisy), clean)
        return StepOutput(loss, {"loss": loss.detach()}, int(clean.shape[0]))

    def eval_metrics(self, data: Any) -> Mapping[str, Any]:
        from torchmetrics import MeanMetric
        from torchmetrics.image import PeakSignalNoiseRatio

        return {"loss": MeanMetric(), "psnr": PeakSignalNoiseRatio(data_range=1.0)}

    def eval_step(self, model: nn.Module, batch: Any, metrics: Mapping[str, Any]) -> int:
        noisy, clean = batch
        out = model(noisy).float()
        metrics["loss"].update(F.mse_loss(out, clean, reduction="none").flatten(1).mean(1))
        metrics["psnr"].update(out.clamp(0, 1), clean)
        return int(clean.shape[0])

    def save_results(self, out: EvalOutput, data: Any, directory: Path, tag: str, title: str = "") -> list[Path]:
        path = Path(directory) / f"{tag}-psnr.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{out.metrics['psnr']:.6f}\n")
        return [path]


@register_method("loss-weight")
class LossWeight(Method):
    """Multiplies the loss below it by a constant (a test-only method)."""

    @dataclass
    class Options:
        loss_weight: float = field(default=0.5, metadata={"help": "the factor"})

    train_logs = ("unweighted_loss",)

    def training_step(self, task, model, batch, inner) -> StepOutput:
        out = inner(model, batch)
        out.logs["unweighted_loss"] = out.loss.detach()
        out.loss = out.loss * self.options.loss_weight
        return out
