"""Reproducible augmentation: each sample's random transform is seeded by (seed, epoch, index).

Augmentation pipelines (timm's, torchvision's) draw from the global ``random``, NumPy and torch
generators. Seeding those per sample, and restoring them afterwards, makes a sample's augmented
image a pure function of (seed, epoch, index): independent of the data-loader workers, of the
order the sampler visits samples, and of where a killed run was resumed.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["EpochSeededDataset", "sample_seed", "seeded_rng"]

_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    # A well-mixed 64-bit hash, so that neighbouring (epoch, index) pairs get unrelated seeds.
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch."""
    h = _splitmix64(seed & _MASK64)
    h = _splitmix64(h ^ (epoch & _MASK64))
    h = _splitmix64(h ^ (index & _MASK64))
    return h >> 1


@contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Seed Python's, NumPy's and torch's CPU generators; restore them on exit.

    Only the CPU default generator is touched (``torch.manual_seed`` would also reseed CUDA's,
    which the training loop owns).
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.set_rng_state(torch_state)


class EpochSeededDataset(Dataset):
    """``base[i] -> (image, label)`` with ``transform(image)`` run under a per-sample seed.

    Call :meth:`set_epoch` before each epoch (the training loop does; with non-persistent
    data-loader workers the workers copy the dataset, epoch included, at each epoch's start).
    """

    def __init__(self, base: Dataset, transform: Callable[[Any], torch.Tensor] | None, seed: int = 0,
                 random_transform: bool = True) -> None:
        self.base = base
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        # eval transforms are deterministic: skip the seeding work
        self.random_transform = random_transform

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def set_seed(self, seed: int) -> None:
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, label = self.base[index]
        if self.transform is not None:
            if self.random_transform:
                with seeded_rng(sample_seed(self.seed, self.epoch, int(index))):
                    img = self.transform(img)
            else:
                img = self.transform(img)
        return img, int(label)

    @property
    def targets(self) -> list[int]:
        t = getattr(self.base, "targets", None)
        if t is None:
            return [int(self.base[i][1]) for i in range(len(self))]
        return [int(v) for v in t]
