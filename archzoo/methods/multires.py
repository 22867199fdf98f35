"""Multi-resolution training with the scale-consistency loss of ResFormer (Tian et al., "ResFormer:
Scaling ViTs with Multi-Resolution Training", CVPR 2023, arXiv 2212.00776).

Authors' code: https://github.com/ruitian12/resformer (``image_classification/engine.py``
``train_one_epoch``, ``losses.py`` ``DistillationLoss`` with ``--distillation-type smooth-l1
--distillation-target cls``, the README's training command).

One training step, as the authors' ``--multi-res-mode co`` (every resolution every step):

1. the batch (at the largest size) is resized to every training size, largest first (the authors
   resize each augmented image with bicubic interpolation; here the normalised batch tensor is resized
   bicubically with antialiasing);
2. each resolution ``i`` runs through the model: cross-entropy ``CE_i`` on its logits, and, for every
   resolution but the largest, the scale-consistency loss between its class-token feature ``k_i`` and
   the detached feature of the next larger resolution, whitened by a LayerNorm without affine
   parameters: ``SCC_i = smooth_l1(k_i, layer_norm(sg(k_{i-1})))``;
3. ``loss = mean_i (CE_i + alpha * SCC_i)`` (``SCC_0 = 0``), backpropagated once.

The teacher of each resolution is the next larger one (the authors' loop overwrites its teacher with
every resolution's output), not always the largest. The class-token feature is the input of the model's
classifier (``get_classifier()``), i.e. timm's pre-logits output: for ResFormer the class token after
the final norm. ``target="logit"`` distils the logits instead (another of the authors' targets; their
``gap`` target is not provided). The model runs through ``model(x)``, so DDP-wrapped models work. Works
with any timm-style model that takes several input sizes (ResFormer, ViTs with dynamic position
embeddings, CNNs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from archzoo.engine.plugins import Method, StepOutput, register_method
from archzoo.errors import ConfigError

__all__ = [
    "MultiResOutput",
    "multires_forward",
    "multires_loss",
    "scale_consistency_loss",
    "resize_batch",
    "TARGETS",
    "MultiResMethod",
]

TARGETS = ("cls", "logit")


def resize_batch(images: torch.Tensor, size: int | tuple[int, int], mode: str = "bicubic",
                 antialias: bool = True) -> torch.Tensor:
    """``images`` (N, C, H, W) resized to ``size`` (square for an int); returned as is when equal."""
    hw = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == hw:
        return images
    aa = antialias and mode in ("bilinear", "bicubic")
    return F.interpolate(images, size=hw, mode=mode, align_corners=False if mode in ("bilinear", "bicubic") else None,
                         antialias=aa)


def scale_consistency_loss(student: torch.Tensor, teacher: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Smooth-L1 between a lower resolution's feature and the whitened (LayerNorm without affine),
    detached feature of the higher resolution (the authors' ``smooth-l1`` distillation)."""
    target = F.layer_norm(teacher.detach(), (teacher.shape[-1],), eps=eps)
    return F.smooth_l1_loss(student, target)


@dataclass
class MultiResOutput:
    """What one multi-resolution step computed; ``loss`` is what to backpropagate."""

    loss: torch.Tensor
    sizes: tuple[int, ...]
    ce: list[torch.Tensor] = field(default_factory=list)           # per size, detached
    consistency: list[torch.Tensor] = field(default_factory=list)  # per size but the largest, detached
    logits: list[torch.Tensor] = field(default_factory=list)       # per size, detached

    @property
    def consistency_mean(self) -> float:
        return float(torch.stack(self.consistency).mean()) if self.consistency else 0.0

    @property
    def ce_mean(self) -> float:
        return float(torch.stack(self.ce).mean())


def _unwrap(model: nn.Module) -> nn.Module:
    """The network inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def _feature_and_logits(model: nn.Module, x: torch.Tensor, target: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ``model(x)`` and the distillation feature. The class-token feature is the input of
    the classifier (timm's ``get_classifier()``: the pre-logits class token), captured with a hook so
    that the forward still goes through ``model.__call__`` (DDP needs that to synchronise gradients)."""
    if target == "logit":
        logits = model(x)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        return logits, logits
    net = _unwrap(model)
    if not hasattr(net, "get_classifier"):
        raise TypeError(f"{type(net).__name__} has no get_classifier(): the class-token feature is its input")
    captured: list[torch.Tensor] = []
    handle = net.get_classifier().register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    try:
        logits = model(x)
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"{type(net).__name__}'s forward did not call its classifier; use target='logit'")
    if isinstance(logits, (tuple, list)):  # distilled heads in training: the class head
        logits = logits[0]
    feature = captured[0]
    return (feature.flatten(1) if feature.dim() > 2 else feature), logits


def multires_forward(
        model: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        sizes: Sequence[int],
        *,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        alpha: float = 1.0,
        target: str = "cls",
        interpolation: str = "bicubic",
) -> MultiResOutput:
    """One multi-resolution forward: CE at each size plus ``alpha`` x the scale-consistency loss,
    averaged over the sizes. ``targets`` may be class indices or soft (mixup) targets, whatever
    ``criterion`` (default: cross-entropy) takes; ``alpha = 0`` is multi-resolution training alone."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if not sizes:
        raise ValueError("sizes must name at least one training resolution")
    if any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must be positive, got {list(sizes)}")
    order = tuple(sorted({int(s) for s in sizes}, reverse=True))  # largest first: it teaches the next
    criterion = criterion or nn.CrossEntropyLoss()
    out = MultiResOutput(loss=images.new_zeros(()), sizes=order)
    total, teacher = None, None
    for size in order:
        feature, logits = _feature_and_logits(model, resize_batch(images, size, interpolation), target)
        ce = criterion(logits, targets)
        term = ce
        if teacher is not None:
            scc = scale_consistency_loss(feature, teacher)
            term = ce + alpha * scc
            out.consistency.append(scc.detach())
        teacher = feature.detach()
        out.ce.append(ce.detach())
        out.logits.append(logits.detach())
        total = term if total is None else total + term
    out.loss = total / len(order)
    return out


def multires_loss(
        model: nn.Module,
        images: torch.Tensor,
        targets: torch.Tensor,
        sizes: Sequence[int],
        *,
        criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        alpha: float = 1.0,
        target: str = "cls",
        interpolation: str = "bicubic",
) -> torch.Tensor:
    """The total multi-resolution loss of one batch (see :func:`multires_forward`): the drop-in
    replacement of ``criterion(model(images), targets)`` in a training step."""
    return multires_forward(model, images, targets, sizes, criterion=criterion, alpha=alpha, target=target,
                            interpolation=interpolation).loss


# -- the engine plug-in: `archzoo train --method multires --train-sizes 128 160 224` -----------------

@register_method("multires")
class MultiResMethod(Method):
    """ResFormer (P37): multi-resolution training with the scale-consistency loss.

    Every step trains at every size of ``--train-sizes``; batches arrive at the largest size."""

    @dataclass
    class Options:
        train_sizes: list[int] | None = field(default=None, metadata={
            "help": "training input sizes (ResFormer: 128 160 224); batches are loaded at the largest", "metavar": "N"})
        consistency_weight: float = field(default=1.0, metadata={"help": "weight alpha of the scale-consistency loss"})
        distill_target: str = field(default="cls", metadata={"help": "what the consistency loss compares",
                                                             "choices": TARGETS})

        def validate(self) -> None:
            if not self.train_sizes or any(int(s) < 1 for s in self.train_sizes):
                raise ConfigError(f"--train-sizes must be one or more positive integers, got {self.train_sizes}")
            if not (self.consistency_weight >= 0):
                raise ConfigError(f"--consistency-weight must be >= 0, got {self.consistency_weight}")

    tasks = ("classification",)
    train_logs = ("consistency",)

    def configure(self, cfg) -> None:
        if cfg.img_size is None:
            cfg.img_size = max(self.options.train_sizes)

    def training_step(self, task, model, batch, inner) -> StepOutput:
        x, y = batch
        o = self.options
        mr = multires_forward(model, x, y, o.train_sizes, criterion=task.criterion, alpha=o.consistency_weight,
                              target=o.distill_target)
        logs = task.step_logs(mr.loss, mr.logits[0], y)  # accuracy at the largest size
        logs["consistency"] = mr.consistency_mean
        return StepOutput(mr.loss, logs, int(y.numel()))
