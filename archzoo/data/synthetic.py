"""``synthetic[:k=v,...]``: learnable random images for tests (no files, no download).

Each class has a smooth random template; a sample is its class template plus per-sample noise,
all generated from (split, index), so any sample can be produced on its own, in any order.
Options: ``classes`` (10), ``train`` (512), ``val`` (128), ``test`` (128), ``noise`` (0.3), ``seed`` (0).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import transforms as T

from archzoo.data.registry import DataBundle, DataError, DataOptions, register_dataset
from archzoo.data.seeded import EpochSeededDataset

__all__ = ["SyntheticDataset", "parse_synthetic_options"]

_DEFAULTS: dict[str, float] = {"classes": 10, "train": 512, "val": 128, "test": 128, "noise": 0.3, "seed": 0}
_SPLIT_CODE = {"train": 1, "val": 2, "test": 3}


def parse_synthetic_options(arg: str | None) -> dict[str, float]:
    opts = dict(_DEFAULTS)
    if not arg:
        return opts
    for part in arg.split(","):
        key, sep, val = part.partition("=")
        key = key.strip()
        if not sep or key not in _DEFAULTS:
            raise DataError(f"bad synthetic option {part!r}; use synthetic:{','.join(f'{k}=N' for k in _DEFAULTS)}")
        try:
            num = float(val) if key == "noise" else int(val)
        except ValueError:
            raise DataError(f"synthetic option {key} needs a number, got {val!r}") from None
        if (key == "classes" and num < 2) or (key in ("train", "val", "test") and num < 1) or num < 0:
            raise DataError(f"synthetic option {key}={val} is out of range")
        opts[key] = num
    return opts


class SyntheticDataset(Dataset):
    def __init__(self, split: str, n: int, classes: int, size: int, in_chans: int, noise: float, seed: int) -> None:
        self.split, self.n, self.classes = split, n, classes
        self.size, self.in_chans, self.noise, self.seed = size, in_chans, noise, seed
        g = torch.Generator().manual_seed(1000 + seed)
        low = torch.rand(classes, in_chans, 4, 4, generator=g)
        self.templates = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
        self.targets = [i % classes for i in range(n)]  # balanced classes

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        g = torch.Generator().manual_seed((self.seed * 7919 + _SPLIT_CODE[self.split]) * 1_000_003 + int(i))
        y = self.targets[i]
        x = self.templates[y] + self.noise * torch.randn(self.in_chans, self.size, self.size, generator=g)
        return x, y


@register_dataset("synthetic", "random class templates plus noise, for tests (synthetic:classes=4,train=64,...)")
def build_synthetic(arg: str | None, opt: DataOptions) -> DataBundle:
    o = parse_synthetic_options(arg)
    k = int(o["classes"])
    mean, std = (0.5,) * opt.in_chans, (0.3,) * opt.in_chans
    normalize = T.Normalize(mean, std)
    train_tf = T.Compose([T.RandomHorizontalFlip(), normalize]) if opt.augment else normalize
    splits: dict[str, Dataset] = {}
    for s in opt.splits:
        base = SyntheticDataset(s, int(o[s]), k, opt.img_size, opt.in_chans, float(o["noise"]), int(o["seed"]))
        is_train = s == "train"
        splits[s] = EpochSeededDataset(base, train_tf if is_train else normalize, random_transform=is_train and opt.augment)
    return DataBundle(
        spec="synthetic" + (f":{arg}" if arg else ""),
        num_classes=k,
        class_names=[f"c{i}" for i in range(k)],
        input_size=(opt.in_chans, opt.img_size, opt.img_size),
        mean=mean,
        std=std,
        splits=splits,
        sources={s: f"synthetic ({int(o[s])} images)" for s in opt.splits},
    )
