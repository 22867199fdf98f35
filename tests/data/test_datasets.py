"""The dataset registry: digits split and sizes, seeded augmentation, imagefolder/cifar errors."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from archzoo.data import DataOptions, build_data, list_datasets, parse_data_spec
from archzoo.data.digits import digits_split_indices
from archzoo.data.registry import DataError
from archzoo.data.seeded import EpochSeededDataset, sample_seed


def test_registry_names():
    assert {"digits", "imagefolder", "cifar10", "cifar100", "synthetic"} <= set(list_datasets())
    assert parse_data_spec("imagefolder:/a/b:c") == ("imagefolder", "/a/b:c")
    with pytest.raises(DataError, match="unknown dataset 'mnist'"):
        parse_data_spec("mnist")


def test_digits_split_fixed_stratified_disjoint():
    s = digits_split_indices()
    sizes = {k: len(v) for k, v in s.items()}
    assert sizes == {"train": 1259, "val": 269, "test": 269}
    allidx = np.concatenate(list(s.values()))
    assert len(set(allidx.tolist())) == 1797
    from archzoo.data.digits import _load

    _, y = _load()
    for split in ("val", "test"):  # every class has its 15 %
        counts = np.bincount(y[s[split]], minlength=10)
        assert counts.min() >= 26 and counts.max() <= 28, counts
    # the split is a constant of the library: its first images never change, whatever the global RNGs
    np.random.seed(1)
    torch.manual_seed(1)
    again = digits_split_indices()
    for split, first in (("train", [0, 2, 3, 4, 7, 8]), ("val", [1, 6, 9, 15, 25, 27]), ("test", [5, 12, 14, 16, 17, 19])):
        assert s[split][:6].tolist() == again[split][:6].tolist() == first, split


@pytest.mark.parametrize("size,chans", [(32, 3), (16, 1), (8, 2)])
def test_digits_shapes_and_normalisation(size, chans):
    b = build_data("digits", DataOptions(img_size=size, in_chans=chans, augment=False))
    assert b.num_classes == 10 and b.input_size == (chans, size, size)
    x, y = b.split("test")[0]
    assert x.shape == (chans, size, size) and x.dtype == torch.float32 and isinstance(y, int)
    if chans > 1:
        assert torch.equal(x[0], x[1])  # replicated
    xs = torch.stack([b.split("train")[i][0] for i in range(0, 1259, 7)])
    assert abs(float(xs.mean())) < 0.25 and 0.6 < float(xs.std()) < 1.4  # normalised with train stats


def test_seeded_augmentation_is_a_function_of_seed_epoch_index():
    ds = build_data("digits", DataOptions(img_size=16)).split("train")
    assert isinstance(ds, EpochSeededDataset)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    py = random.getstate()
    a0 = ds[5][0]
    assert torch.equal(torch.get_rng_state(), before) and random.getstate() == py  # global RNGs untouched
    ds.set_epoch(1)
    a1 = ds[5][0]
    ds.set_epoch(0)
    assert torch.equal(ds[5][0], a0) and not torch.equal(a0, a1)
    ds.set_seed(7)
    assert not torch.equal(ds[5][0], a0)
    assert sample_seed(0, 0, 5) != sample_seed(0, 0, 6) != sample_seed(0, 1, 5)
    # evaluation splits are never augmented: any epoch or seed gives the plain, un-augmented sample
    ev = build_data("digits", DataOptions(img_size=16)).split("val")
    plain = build_data("digits", DataOptions(img_size=16, augment=False)).split("val")[3][0]
    assert isinstance(ev, EpochSeededDataset)
    for epoch, seed in ((0, 0), (3, 0), (3, 7)):
        ev.set_epoch(epoch)
        ev.set_seed(seed)
        assert torch.equal(ev[3][0], plain), (epoch, seed)


def test_synthetic_options_and_errors():
    b = build_data("synthetic:classes=3,train=10,val=4,test=5", DataOptions(img_size=8, in_chans=1))
    assert b.num_classes == 3 and [len(b.split(s)) for s in ("train", "val", "test")] == [10, 4, 5]
    # a sample is a function of (split, index): the same from a fresh bundle read in another order,
    # different in another split
    val = [b.split("val")[i] for i in range(4)]
    fresh = build_data("synthetic:classes=3,train=10,val=4,test=5", DataOptions(img_size=8, in_chans=1))
    for i in (3, 1, 2, 0):
        x, y = fresh.split("val")[i]
        assert torch.equal(x, val[i][0]) and y == val[i][1] == i % 3
    assert not torch.equal(fresh.split("test")[2][0], val[2][0])
    with pytest.raises(DataError, match="bad synthetic option"):
        build_data("synthetic:colours=3")
    with pytest.raises(DataError, match="digits takes no argument"):
        build_data("digits:foo")


def _png(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 10, 3), value, dtype=np.uint8)).save(path)


def test_imagefolder(tmp_path):
    for split in ("train", "val"):
        for c, v in (("cat", 10), ("dog", 200)):
            for i in range(2):
                _png(tmp_path / split / c / f"{i}.png", v + i)
    b = build_data(f"imagefolder:{tmp_path}", DataOptions(img_size=8, in_chans=3))
    assert b.class_names == ["cat", "dog"] and b.test_split == "val"
    x, y = b.split("train")[3]
    assert x.shape == (3, 8, 8) and y == 1
    g = build_data(f"imagefolder:{tmp_path}", DataOptions(img_size=8, in_chans=1, splits=("test",)))
    assert g.split("test")[0][0].shape == (1, 8, 8)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match=r"dataset path .*nope does not exist"):
        build_data(f"imagefolder:{tmp_path / 'nope'}")
    (tmp_path / "empty" / "train" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "val" / "a").mkdir(parents=True)
    (tmp_path / "empty" / "train" / "a" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"ImageFolder .*train has no images"):
        build_data(f"imagefolder:{tmp_path / 'empty'}")
    _png(tmp_path / "mixed" / "train" / "a" / "0.png", 0)
    _png(tmp_path / "mixed" / "val" / "b" / "0.png", 0)
    with pytest.raises(DataError, match="same class folders"):
        build_data(f"imagefolder:{tmp_path / 'mixed'}")
    (tmp_path / "noval" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="no val/ folder"):
        build_data(f"imagefolder:{tmp_path / 'noval'}", DataOptions(splits=("val",)))


def test_cifar_needs_download(tmp_path):
    root = tmp_path / "cifar"
    with pytest.raises(DataError, match=r"CIFAR-10 not found under .*pass --download"):
        build_data(f"cifar10:{root}")
    with pytest.raises(DataError, match="CIFAR-100 not found"):
        build_data(f"cifar100:{root}")
    assert not root.exists()  # nothing fetched, nothing created
