"""Evaluation: loss, top-1/top-5, per-class accuracy and the confusion matrix, reduced over ranks.

The training run's reported test accuracy and ``archzoo eval`` both come from :func:`evaluate`,
with the same loader settings, so the two agree exactly.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from archzoo.engine.ddp import DistInfo, ShardSampler, all_reduce_sum

__all__ = ["EvalResult", "evaluate", "eval_loader", "autocast_context"]


@dataclass
class EvalResult:
    n: int
    loss: float
    top1: float  # percent
    topk: float  # percent, k = min(5, classes)
    k: int
    confusion: torch.Tensor  # classes x classes, rows: true class
    per_class: list[float] = field(default_factory=list)  # percent (nan where a class has no images)

    def as_dict(self, class_names: list[str] | None = None) -> dict[str, Any]:
        names = class_names or [str(i) for i in range(len(self.per_class))]
        return {
            "n": self.n,
            "loss": self.loss,
            "top1": self.top1,
            f"top{self.k}": self.topk,
            "per_class": {n: (None if a != a else a) for n, a in zip(names, self.per_class)},
            "confusion": self.confusion.tolist(),
        }


def autocast_context(device: torch.device, amp_dtype: torch.dtype | None) -> Any:
    if amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def eval_loader(ds: Dataset, batch_size: int, dist_info: DistInfo, workers: int = 0) -> DataLoader:
    sampler = ShardSampler(len(ds), dist_info.rank, dist_info.world_size)  # type: ignore[arg-type]
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=dist_info.device.type == "cuda", drop_last=False,
                      generator=torch.Generator().manual_seed(0))  # leaves the global RNG alone


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: DataLoader,
    num_classes: int,
    dist_info: DistInfo,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> EvalResult:
    """Evaluate ``model`` on this rank's shard; sums are reduced over ranks before the ratios."""
    device = dist_info.device
    was_training = model.training
    model.eval()
    k = min(5, num_classes)
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.float64, device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, top-k hits, count
    try:
        for x, y in loader:
            x = x.to(device, non_blocking=True)
            y = y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_context(device, amp_dtype):
                logits = model(x)
            logits = logits.float()
            sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
            top = logits.topk(k, dim=1).indices
            sums[1] += (top == y[:, None]).any(dim=1).sum()
            sums[2] += y.numel()
            pred = top[:, 0]
            confusion.index_put_((y, pred), torch.ones_like(y, dtype=torch.float64), accumulate=True)
            if on_batch is not None:
                on_batch(int(y.numel()))
    finally:
        model.train(was_training)
    all_reduce_sum(sums)
    all_reduce_sum(confusion)
    conf = confusion.round().long().cpu()
    n = int(sums[2].item())
    correct = int(conf.diagonal().sum().item())
    per_class_n = conf.sum(dim=1)
    per_class = [
        (100.0 * int(conf[i, i]) / int(per_class_n[i])) if int(per_class_n[i]) else float("nan")
        for i in range(num_classes)
    ]
    return EvalResult(
        n=n,
        loss=float(sums[0].item()) / max(n, 1),
        top1=100.0 * correct / max(n, 1),
        topk=100.0 * int(round(sums[1].item())) / max(n, 1),
        k=k,
        confusion=conf,
        per_class=per_class,
    )
