"""archzoo.checkpoint.unwrap_state_dict: the one place that unwraps training checkpoints and strips
DataParallel's ``module.`` prefix for the families' checkpoint filters and for read_state_dict."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from archzoo.checkpoint import CheckpointError, load_checkpoint, unwrap_state_dict


def test_unwraps_model_and_strips_module_prefix():
    t = torch.ones(2)
    assert unwrap_state_dict({"model": {"module.a": t}, "epoch": 3}) == {"a": t}


def test_plain_state_dict_comes_back_stripped_without_error():
    t, u = torch.ones(1), torch.zeros(1)
    out = unwrap_state_dict({"module.a": t, "b": u, "step": 7})  # non-tensor entries are dropped
    assert list(out) == ["a", "b"] and out["a"] is t and out["b"] is u
    assert unwrap_state_dict({}) == {}
    assert unwrap_state_dict({"epoch": 1}) == {}  # no tensors: no error here, callers decide


def test_state_dict_wrapper_and_preference_order():
    t, e = torch.ones(1), torch.zeros(1)
    assert unwrap_state_dict({"state_dict": {"module.w": t}, "optimizer": {}}) == {"w": t}
    ckpt = {"model": {"w": t}, "model_ema": {"w": e}}
    assert unwrap_state_dict(ckpt)["w"] is e  # archzoo's default order: EMA weights first
    assert unwrap_state_dict(ckpt, wrapper_keys=("model", "model_ema"))["w"] is t  # a family's own order
    assert unwrap_state_dict({"state_dict": {"model": {"module.w": t}}}) == {"w": t}  # nested wrappers


def test_load_checkpoint_refuses_a_file_without_tensors(tmp_path):
    path = tmp_path / "empty.pth"
    torch.save({"model": {"epoch": 1}, "args": "x"}, path)
    with pytest.raises(CheckpointError, match="no tensors found"):
        load_checkpoint(nn.Linear(2, 2), path)
    torch.save({"epoch": 1}, path)
    with pytest.raises(CheckpointError, match="no tensors found"):
        load_checkpoint(nn.Linear(2, 2), path)


def test_load_checkpoint_reads_a_wrapped_dataparallel_file(tmp_path):
    src = nn.Linear(2, 2)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 2}, path)
    dst = load_checkpoint(nn.Linear(2, 2), path)
    assert torch.equal(dst.weight, src.weight) and torch.equal(dst.bias, src.bias)
