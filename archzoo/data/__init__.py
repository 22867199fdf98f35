"""Datasets for ``archzoo train`` / ``archzoo eval``: a small registry of named sources.

A data spec is ``NAME`` or ``NAME:ARG``:

- ``digits`` (default): scikit-learn's 1,797 embedded 8x8 handwritten digits, a fixed stratified
  train/val/test split, upsampled to the requested size; nothing to download.
- ``imagefolder:PATH``: torchvision ImageFolder layout, ``PATH/train/<class>/*`` and ``PATH/val/<class>/*``
  (``PATH/test`` is used as the test split when present, ``val`` otherwise).
- ``cifar10[:ROOT]`` / ``cifar100[:ROOT]``: torchvision's CIFAR, fetched only with ``download=True``.
- ``synthetic[:k=v,...]``: class-dependent random patterns, for tests.

Every builder returns a :class:`DataBundle` whose datasets yield ``(CxHxW float tensor, int label)``
already normalised; random training augmentation is seeded per (seed, epoch, sample) so that a
resumed run sees exactly the images the uninterrupted one saw.
"""
from __future__ import annotations

from archzoo.data.registry import (
    DataBundle,
    DataOptions,
    build_data,
    list_datasets,
    parse_data_spec,
    register_dataset,
)
from archzoo.data.seeded import EpochSeededDataset

# Builders register themselves on import.
from archzoo.data import digits as _digits  # noqa: F401,E402
from archzoo.data import folder as _folder  # noqa: F401,E402
from archzoo.data import synthetic as _synthetic  # noqa: F401,E402

__all__ = [
    "DataBundle",
    "DataOptions",
    "EpochSeededDataset",
    "build_data",
    "list_datasets",
    "parse_data_spec",
    "register_dataset",
]
