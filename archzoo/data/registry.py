"""The dataset registry: data specs (``NAME[:ARG]``) resolved to train/val/test datasets."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch.utils.data import Dataset

from archzoo.errors import DataError  # re-exported: its home is archzoo.errors

__all__ = [
    "DataError",
    "DataOptions",
    "DataBundle",
    "register_dataset",
    "list_datasets",
    "parse_data_spec",
    "build_data",
    "SPLITS",
]

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DataOptions:
    """What the model needs from the data, and which splits to build."""

    img_size: int = 32
    in_chans: int = 3
    download: bool = False
    augment: bool = True
    splits: tuple[str, ...] = SPLITS


@dataclass
class DataBundle:
    """The resolved data of one spec: datasets per split, classes and normalisation."""

    spec: str
    num_classes: int
    class_names: list[str]
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    splits: dict[str, Dataset] = field(default_factory=dict)
    # what the "test" split really is, for reports: "val" for an imagefolder without test/
    test_split: str = "test"
    # where each split lives, for messages and the run's config
    sources: dict[str, str] = field(default_factory=dict)

    def split(self, name: str) -> Dataset:
        if name not in self.splits:
            raise DataError(f"data {self.spec!r} has no {name!r} split (it has: {', '.join(self.splits)})")
        return self.splits[name]


Builder = Callable[[str | None, DataOptions], DataBundle]
_BUILDERS: dict[str, tuple[Builder, str]] = {}


def register_dataset(name: str, help: str = "") -> Callable[[Builder], Builder]:
    """Decorator: ``@register_dataset("digits")`` on ``builder(arg, options) -> DataBundle``."""

    def deco(fn: Builder) -> Builder:
        _BUILDERS[name] = (fn, help)
        return fn

    return deco


def list_datasets() -> dict[str, str]:
    """Registered dataset names and their one-line descriptions."""
    return {k: h for k, (_, h) in sorted(_BUILDERS.items())}


def parse_data_spec(spec: str) -> tuple[str, str | None]:
    """``"imagefolder:/data/x"`` -> ``("imagefolder", "/data/x")``; ``"digits"`` -> ``("digits", None)``."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError("empty data spec (use e.g. digits, imagefolder:PATH, cifar10, synthetic)")
    name, sep, arg = spec.strip().partition(":")
    name = name.lower()
    if name not in _BUILDERS:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(sorted(_BUILDERS))} (imagefolder takes :PATH)")
    return name, (arg if sep else None)


def build_data(spec: str, options: DataOptions | None = None) -> DataBundle:
    """Resolve a data spec. User errors raise :class:`DataError` (a ValueError) naming the problem."""
    options = options or DataOptions()
    if not isinstance(options.img_size, int) or options.img_size < 1:
        raise DataError(f"image size must be a positive integer, got {options.img_size!r}")
    if not isinstance(options.in_chans, int) or options.in_chans < 1:
        raise DataError(f"in_chans must be a positive integer, got {options.in_chans!r}")
    unknown = [s for s in options.splits if s not in SPLITS]
    if unknown:
        raise DataError(f"unknown split(s) {unknown}; splits are {', '.join(SPLITS)}")
    name, arg = parse_data_spec(spec)
    builder, _ = _BUILDERS[name]
    return builder(arg, options)
