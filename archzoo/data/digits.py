"""``digits``: scikit-learn's embedded 1,797 handwritten 8x8 digits (UCI optdigits test set).

The split is fixed (stratified, seed 0, 70/15/15 % -> 1,257 / 270 / 270 images) so that every run
and every ``archzoo eval`` of a digits checkpoint sees the same test images. Images are upsampled
bilinearly to the requested size and replicated to ``in_chans`` channels. Training augmentation is
a small random affine (rotation, shift, scale): timm's transform factory targets PIL photographs
(random-resized crops, flips, colour jitter) that would destroy digits.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import transforms as T

from archzoo.data.registry import DataBundle, DataError, DataOptions, register_dataset
from archzoo.data.seeded import EpochSeededDataset

__all__ = ["DigitsDataset", "digits_split_indices", "SPLIT_SEED", "SPLIT_FRACTIONS"]

SPLIT_SEED = 0
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)


@lru_cache(maxsize=1)
def _load() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images.astype(np.float32) / 16.0), d.target.astype(np.int64)


@lru_cache(maxsize=1)
def digits_split_indices() -> dict[str, np.ndarray]:
    """The fixed stratified split: ``{"train": idx, "val": idx, "test": idx}`` into the 1,797 images."""
    from sklearn.model_selection import train_test_split

    _, y = _load()
    idx = np.arange(len(y))
    n_test = int(round(SPLIT_FRACTIONS[2] * len(y)))
    n_val = int(round(SPLIT_FRACTIONS[1] * len(y)))
    rest, test = train_test_split(idx, test_size=n_test, stratify=y, random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=n_val, stratify=y[rest], random_state=SPLIT_SEED)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


class DigitsDataset(Dataset):
    """One split of the digits at ``size`` x ``size``, values in [0, 1], ``in_chans`` channels."""

    def __init__(self, split: str, size: int = 32, in_chans: int = 3) -> None:
        images, labels = _load()
        idx = digits_split_indices()[split]
        self.images = torch.from_numpy(images[idx])  # N x 8 x 8
        self.targets = [int(v) for v in labels[idx]]
        self.size = size
        self.in_chans = in_chans

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i][None, None]
        if self.size != 8:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = x[0].clamp_(0.0, 1.0)
        return x.expand(self.in_chans, -1, -1).contiguous(), self.targets[i]


def _train_stats() -> tuple[float, float]:
    images, _ = _load()
    tr = images[digits_split_indices()["train"]]
    return float(tr.mean()), float(tr.std())


@register_dataset("digits", "scikit-learn's 1,797 embedded 8x8 digits (default; fixed 70/15/15 split)")
def build_digits(arg: str | None, opt: DataOptions) -> DataBundle:
    if arg:
        raise DataError(f"digits takes no argument, got 'digits:{arg}'")
    mean, std = _train_stats()
    means, stds = (mean,) * opt.in_chans, (std,) * opt.in_chans
    normalize = T.Normalize(means, stds)
    if opt.augment:
        # background is 0 before normalisation, so the affine's fill is 0
        train_tf = T.Compose([T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), fill=0.0), normalize])
    else:
        train_tf = normalize
    splits: dict[str, Dataset] = {}
    for s in opt.splits:
        is_train = s == "train"
        splits[s] = EpochSeededDataset(
            DigitsDataset(s, opt.img_size, opt.in_chans), train_tf if is_train else normalize,
            random_transform=is_train and opt.augment,
        )
    return DataBundle(
        spec="digits",
        num_classes=10,
        class_names=[str(i) for i in range(10)],
        input_size=(opt.in_chans, opt.img_size, opt.img_size),
        mean=means,
        std=stds,
        splits=splits,
        sources={s: f"sklearn digits ({len(digits_split_indices()[s])} images)" for s in opt.splits},
    )
