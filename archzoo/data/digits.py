"""``digits``: scikit-learn's embedded 1,797 handwritten 8x8 digits (UCI optdigits test set).

The split is fixed (stratified per class, seed 0, 70/15/15 %) so that every run
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
    """(1797 x 8 x 8 images in [0, 1], labels), read from scikit-learn's bundled ``digits.csv.gz``.

    The file is read directly: importing ``sklearn.datasets`` costs seconds of start-up.
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    path = None
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
    if path and os.path.isfile(path):
        data = np.loadtxt(path, delimiter=",", dtype=np.float32)
        images, target = data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    else:  # a layout we do not know: the public loader
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images.astype(np.float32), d.target.astype(np.int64)
    return images / 16.0, target


@lru_cache(maxsize=1)
def digits_split_indices() -> dict[str, np.ndarray]:
    """The fixed stratified split: ``{"train": idx, "val": idx, "test": idx}`` into the 1,797 images.

    Per class, a permutation from a fixed-seed generator; the first 15 % go to test, the next 15 %
    to val (our own few lines rather than scikit-learn's splitter, whose output may change across
    versions).
    """
    _, y = _load()
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(SPLIT_FRACTIONS[2] * len(idx)))
        n_val = int(round(SPLIT_FRACTIONS[1] * len(idx)))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test:n_test + n_val])
        parts["train"].append(idx[n_test + n_val:])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


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
        train_tf = T.Compose([T.RandomAffine(degrees=0, translate=(0.0625, 0.0625), fill=0.0), normalize])
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
