"""Image files: ``imagefolder:PATH`` (torchvision's ImageFolder layout) and ``cifar10`` / ``cifar100``.

Both go through timm's transform factory (``timm.data.create_transform``): random-resized crop,
flip and colour jitter for training; resize + centre crop for evaluation; ImageNet (or CIFAR)
normalisation. CIFAR is fetched only when the user passes ``--download`` (``download=True``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset
from torchvision import transforms as T

from archzoo.data.registry import DataBundle, DataError, DataOptions, register_dataset
from archzoo.data.seeded import EpochSeededDataset

__all__ = ["default_data_root", "count_images", "load_image", "IMG_EXTENSIONS"]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def default_data_root() -> Path:
    """Where downloadable datasets live: ``$ARCHZOO_DATA`` or ``~/.cache/archzoo/data``."""
    return Path(os.environ.get("ARCHZOO_DATA") or Path.home() / ".cache" / "archzoo" / "data")


def count_images(folder: Path) -> tuple[list[str], int]:
    """Class sub-folders of ``folder`` and how many images they hold (ImageFolder's rules)."""
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    n = 0
    for c in classes:
        for _, _, files in os.walk(folder / c, followlinks=True):
            n += sum(1 for f in files if f.lower().endswith(IMG_EXTENSIONS))
    return classes, n


def load_image(path: str) -> Any:
    """ImageFolder's loader (PIL, RGB), with a :class:`DataError` naming the file it cannot read."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except OSError as e:  # a missing/unreadable file, or PIL's UnidentifiedImageError (an OSError)
        raise DataError(f"cannot read image {path}: {e}") from None


def _transforms(opt: DataOptions, mean: tuple[float, ...], std: tuple[float, ...], *,
                scale: tuple[float, float] | None, crop_pct: float | None) -> tuple[Any, Any]:
    from timm.data import create_transform

    size = (opt.in_chans, opt.img_size, opt.img_size)
    train = create_transform(size, is_training=True, no_aug=not opt.augment, scale=scale, hflip=0.5,
                             interpolation="bilinear", mean=mean, std=std)
    evalt = create_transform(size, is_training=False, crop_pct=crop_pct, interpolation="bilinear", mean=mean, std=std)
    if opt.in_chans == 1:  # files are decoded as RGB; the model wants one channel
        train, evalt = T.Compose([T.Grayscale(1), train]), T.Compose([T.Grayscale(1), evalt])
    return train, evalt


def _norm(opt: DataOptions, mean3: tuple[float, ...], std3: tuple[float, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if opt.in_chans == 3:
        return mean3, std3
    if opt.in_chans == 1:
        return (sum(mean3) / 3,), (sum(std3) / 3,)
    raise DataError(f"image files give 1 or 3 channels, not in_chans={opt.in_chans}")


@register_dataset("imagefolder", "imagefolder:PATH with PATH/train/<class>/*.jpg and PATH/val/<class>/*.jpg")
def build_imagefolder(arg: str | None, opt: DataOptions) -> DataBundle:
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
    from torchvision.datasets import ImageFolder

    if not arg:
        raise DataError("imagefolder needs a path: --data imagefolder:PATH (PATH/train/<class>/*, PATH/val/<class>/*)")
    root = Path(arg).expanduser()
    if not root.exists():
        raise DataError(f"dataset path {root} does not exist")
    if not root.is_dir():
        raise DataError(f"dataset path {root} is not a directory")
    has_test = (root / "test").is_dir()
    wanted = {"train": "train", "val": "val", "test": "test" if has_test else "val"}
    folders: dict[str, Path] = {}
    classes: list[str] | None = None
    for s in opt.splits:
        sub = root / wanted[s]
        if not sub.is_dir():
            raise DataError(f"ImageFolder {root} has no {wanted[s]}/ folder (expected {root}/{wanted[s]}/<class>/<image>)")
        try:
            cls, n = count_images(sub)
        except OSError as e:
            raise DataError(f"cannot read ImageFolder {sub}: {e}") from None
        if n == 0:
            raise DataError(f"ImageFolder {sub} has no images (expected {sub}/<class>/<image> with one of "
                            f"{', '.join(IMG_EXTENSIONS)})")
        if classes is not None and cls != classes:
            raise DataError(f"ImageFolder {sub} has classes {cls[:5]}... but {folders[opt.splits[0]]} has {classes[:5]}...: "
                            "splits must have the same class folders")
        classes, folders[s] = cls, sub
    mean, std = _norm(opt, IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD)
    train_tf, eval_tf = _transforms(opt, mean, std, scale=None, crop_pct=None)
    splits: dict[str, Dataset] = {}
    for s, sub in folders.items():
        try:
            base = ImageFolder(str(sub), loader=load_image, allow_empty=True)
        except (FileNotFoundError, OSError) as e:
            raise DataError(f"cannot read ImageFolder {sub}: {str(e).splitlines()[0]}") from None
        is_train = s == "train"
        splits[s] = EpochSeededDataset(base, train_tf if is_train else eval_tf, random_transform=is_train and opt.augment)
    assert classes is not None
    return DataBundle(
        spec=f"imagefolder:{root}",
        num_classes=len(classes),
        class_names=classes,
        input_size=(opt.in_chans, opt.img_size, opt.img_size),
        mean=mean,
        std=std,
        splits=splits,
        test_split="test" if has_test else "val",
        sources={s: str(p) for s, p in folders.items()},
    )


class _Subset(Dataset):
    def __init__(self, base: Dataset, indices: list[int], targets: list[int]) -> None:
        self.base, self.indices = base, indices
        self.targets = [targets[i] for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.base[self.indices[i]]


def _build_cifar(name: str, arg: str | None, opt: DataOptions) -> DataBundle:
    from sklearn.model_selection import train_test_split
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    root = Path(arg).expanduser() if arg else default_data_root()
    label = "CIFAR-10" if name == "cifar10" else "CIFAR-100"
    if not opt.download:
        probe = cls.__new__(cls)
        probe.root = str(root)
        if not probe._check_integrity():  # torchvision's own md5 check of the extracted batches
            raise DataError(f"{label} not found under {root}; pass --download to fetch it (about 170 MB)")
    try:
        train_full = cls(str(root), train=True, download=opt.download) if {"train", "val"} & set(opt.splits) else None
        test = cls(str(root), train=False, download=opt.download) if "test" in opt.splits else None
    except (RuntimeError, OSError) as e:
        raise DataError(f"cannot load {label} from {root}: {str(e).splitlines()[0]}") from None
    mean, std = _norm(opt, CIFAR_MEAN, CIFAR_STD)
    # 32x32 images: crops keep at least 35 % of the area, and evaluation does not crop
    train_tf, eval_tf = _transforms(opt, mean, std, scale=(0.35, 1.0), crop_pct=1.0)
    splits: dict[str, Dataset] = {}
    if train_full is not None:
        targets = list(train_full.targets)
        tr, va = train_test_split(list(range(len(targets))), test_size=0.1, stratify=targets, random_state=0)
        parts = {"train": sorted(tr), "val": sorted(va)}
        for s in ("train", "val"):
            if s in opt.splits:
                is_train = s == "train"
                splits[s] = EpochSeededDataset(_Subset(train_full, parts[s], targets), train_tf if is_train else eval_tf,
                                               random_transform=is_train and opt.augment)
    if test is not None:
        splits["test"] = EpochSeededDataset(test, eval_tf, random_transform=False)
    classes = list((train_full or test).classes)  # type: ignore[union-attr]
    return DataBundle(
        spec=name + (f":{arg}" if arg else ""),
        num_classes=len(classes),
        class_names=classes,
        input_size=(opt.in_chans, opt.img_size, opt.img_size),
        mean=mean,
        std=std,
        splits=splits,
        sources={s: f"{label} in {root}" for s in splits},
    )


@register_dataset("cifar10", "CIFAR-10 via torchvision (cifar10[:ROOT]; needs --download the first time)")
def build_cifar10(arg: str | None, opt: DataOptions) -> DataBundle:
    return _build_cifar("cifar10", arg, opt)


@register_dataset("cifar100", "CIFAR-100 via torchvision (cifar100[:ROOT]; needs --download the first time)")
def build_cifar100(arg: str | None, opt: DataOptions) -> DataBundle:
    return _build_cifar("cifar100", arg, opt)
