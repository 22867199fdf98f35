"""Engine parts: atomic checkpoint folders, safe state files, RNG round trips, samplers, metrics."""
from __future__ import annotations

import os
import random
import shutil
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from archzoo.errors import CheckpointError
from archzoo.engine import checkpoints as ck
from archzoo.engine.config import ConfigError, TrainConfig
from archzoo.engine.ddp import DistInfo, ResumableDistributedSampler, ShardSampler
from archzoo.engine.evaluate import eval_loader, evaluate
from archzoo.engine.modeling import zero_classifier
from archzoo.engine.state import TrainState
from archzoo.tasks.classification import ClassificationTask


def _ckpt(tmp_path, tag: float):
    w = {"a": torch.full((2,), tag), "b": torch.arange(3)}
    state = TrainState(epoch=int(tag), global_step=7, log_keys=["loss"], sums=[[1.5, 3.0]], rng=[ck.rng_state()],
                       history=[{"epoch": 1, "val_acc": 50.0}], best={"epoch": 1, "metric": "acc", "value": 50.0},
                       optimizer={"state": {0: {"exp_avg": torch.ones(2) * tag}},
                                  "param_groups": [{"lr": tag, "betas": (0.9, 0.999)}]})
    return ck.save_checkpoint_dir(tmp_path, "last", weights=w, meta={"model": "m", "tag": tag}, state=state)


def test_checkpoint_folder_swap_and_recovery(tmp_path):
    p = _ckpt(tmp_path, 1.0)
    assert sorted(os.listdir(p)) == ["meta.json", "model.safetensors", "state.pt"]
    _ckpt(tmp_path, 2.0)
    assert sorted(os.listdir(tmp_path)) == ["last"]  # no temp or .old folder left
    assert ck.read_meta(tmp_path / "last")["tag"] == 2.0
    # a kill between the two renames: only .last.old exists -> it is found
    os.rename(tmp_path / "last", tmp_path / ".last.old")
    assert ck.find_checkpoint(tmp_path, "last") == tmp_path / ".last.old"
    _ckpt(tmp_path, 3.0)
    assert ck.find_checkpoint(tmp_path, "last") == tmp_path / "last"
    assert not (tmp_path / ".last.old").exists()
    st = TrainState.load(tmp_path / "last")
    assert st.optimizer["param_groups"][0]["betas"] == (0.9, 0.999) and torch.equal(st.optimizer["state"][0]["exp_avg"], torch.full((2,), 3.0))
    assert (st.epoch, st.global_step, st.sums, st.best["value"]) == (3, 7, [[1.5, 3.0]], 50.0)
    # the RNG states come back exactly
    torch.set_rng_state(st.rng[0]["torch"])
    a = torch.rand(4)
    ck.set_rng_state(TrainState.load(tmp_path / "last").rng[0])
    assert torch.equal(a, torch.rand(4))


def test_state_file_is_loaded_weights_only(tmp_path):
    p = _ckpt(tmp_path, 1.0)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"version": 2, "optimizer": Evil()}, p / "state.pt")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        TrainState.load(p)
    (p / "state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        TrainState.load(p)
    torch.save({"version": 1}, p / "state.pt")
    with pytest.raises(CheckpointError, match="not a training state of this archzoo version"):
        TrainState.load(p)
    assert zipfile.is_zipfile(p / "model.safetensors") is False  # weights are safetensors, not pickles


def test_rng_state_round_trip(tmp_path):
    torch.manual_seed(1)
    random.seed(2)
    np.random.seed(3)
    torch.save({"rng": ck.rng_state()}, tmp_path / "s.pt")
    want = (torch.rand(3), random.random(), np.random.rand())
    torch.manual_seed(9)
    random.seed(9)
    np.random.seed(9)
    ck.set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"])
    got = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(want[0], got[0]) and want[1:] == got[1:]


def test_resolve_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ck.resolve_checkpoint(tmp_path / "x")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="no checkpoint yet"):
        ck.resolve_checkpoint(tmp_path)
    ck.save_checkpoint_dir(tmp_path, "best", weights={"a": torch.ones(1)}, meta={"model": "m"})
    for p in (tmp_path, tmp_path / "best", tmp_path / "best" / "model.safetensors"):
        r = ck.resolve_checkpoint(p)
        assert r.weights == tmp_path / "best" / "model.safetensors" and r.run_dir == tmp_path and r.meta["model"] == "m"
    shutil.copy(tmp_path / "best" / "model.safetensors", tmp_path / "loose.safetensors")
    r = ck.resolve_checkpoint(tmp_path / "loose.safetensors")
    assert r.meta is None and r.run_dir is None


def test_resumable_sampler_skips_and_shards():
    data = list(range(50))
    full = ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=4)
    full.set_epoch(3)
    order = list(full)
    assert sorted(order) == data and len(full) == 50
    again = ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=4)
    again.set_epoch(3)
    again.set_start(20)
    assert list(again) == order[20:] and len(again) == 30
    full.set_epoch(4)
    assert list(full) != order  # a new order every epoch
    shards = []
    for r in range(2):
        s = ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=4)
        s.set_epoch(3)
        shards.append(list(s))
    assert not set(shards[0]) & set(shards[1]) and len(shards[0]) == len(shards[1]) == 25
    ev = [list(ShardSampler(7, r, 3)) for r in range(3)]
    assert sorted(sum(ev, [])) == list(range(7))


class _Fixed(nn.Module):
    """Predicts class (x[0,0,0] as int)."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x):
        idx = x[:, 0, 0, 0].long()
        out = torch.zeros(x.shape[0], self.k)
        out[torch.arange(x.shape[0]), idx] = 5.0
        out[:, 0] += 1.0  # class 0 always second best
        return out


def test_classification_evaluation_metrics():
    """The classification task's torchmetrics give the values worked out by hand."""
    from types import SimpleNamespace

    preds = [0, 1, 2, 2, 1, 0]
    labels = [0, 1, 1, 2, 2, 2]
    ds = [(torch.full((1, 2, 2), float(p)), y) for p, y in zip(preds, labels)]
    data = SimpleNamespace(num_classes=6, class_names=[f"c{i}" for i in range(6)])
    task = ClassificationTask(ClassificationTask.Options(), TrainConfig())
    res = evaluate(task, _Fixed(6), eval_loader(ds, 4, DistInfo()), data, DistInfo())
    assert res.n == 6 and res.metrics["acc"] == pytest.approx(100 * 3 / 6)
    # top-5: the true class is among the 5 best everywhere but where it is one of the tied zero logits
    logits = torch.stack([_Fixed(6)(x[None])[0] for x, _ in ds])
    want_top5 = 100 * sum(int(y in logits[i].topk(5).indices.tolist()) for i, y in enumerate(labels)) / 6
    assert res.details["top_k"] == 5 and res.metrics["top5"] == pytest.approx(want_top5)
    conf = res.details["confusion"]
    assert conf[2] == [1, 1, 1, 0, 0, 0] and conf[1] == [0, 1, 1, 0, 0, 0]
    pc = res.details["per_class"]
    assert [pc["c0"], pc["c1"], pc["c2"]] == [100.0, 50.0, pytest.approx(100 / 3)] and pc["c3"] is None
    ce = torch.nn.functional.cross_entropy(logits, torch.tensor(labels))
    assert res.metrics["loss"] == pytest.approx(float(ce), rel=1e-6)


def test_config_validation_messages():
    for kw, msg in [({"epochs": 0}, "--epochs must be a positive integer, got 0"),
                    ({"lr": -0.1}, "--lr must be a positive number, got -0.1"),
                    ({"opt": "nope"}, "unknown optimizer 'nope'"),
                    ({"warmup_epochs": -1}, "--warmup-epochs must be an integer >= 0, got -1")]:
        with pytest.raises(ConfigError) as e:
            TrainConfig(**kw).validate()
        assert msg in str(e.value)
    d = TrainConfig()
    assert TrainConfig.from_dict(d.to_dict()) == d
    with pytest.raises(ConfigError, match="unknown config keys"):
        TrainConfig.from_dict({**d.to_dict(), "label_smoothing": 0.1})


def test_zero_classifier():
    import timm

    m = timm.create_model("mobilenetv2_050", num_classes=4)
    assert zero_classifier(m) == ["classifier.weight", "classifier.bias"]
    assert float(m.get_classifier().weight.detach().abs().sum()) == 0.0
