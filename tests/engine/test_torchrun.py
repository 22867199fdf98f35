"""``torchrun --nproc_per_node=2`` on the CPU (gloo): ranks train on disjoint shards, metrics are
reduced over both, and only rank 0 writes the run folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch.distributed as dist

from archzoo.engine.state import TrainState


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_torchrun_two_processes(tmp_path):
    trace = tmp_path / "trace"
    env = dict(os.environ, ARCHZOO_DEBUG_TRACE_DIR=str(trace), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "archzoo", "train", "--model", "mobilenetv2_050", "--data", "synthetic:classes=4,train=40,val=10,test=10",
        "--img-size", "32", "--batch-size", "4", "--epochs", "1", "--device", "cpu", "--quiet",
        "--output", str(tmp_path / "runs"), "--name", "ddp",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]

    r0, r1 = (json.loads((trace / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    a, b = r0["indices"]["0"], r1["indices"]["0"]
    assert len(a) == len(b) == 20  # 40 images / 2 ranks, 5 steps of 4 each
    assert not set(a) & set(b), "ranks saw the same images"
    assert sorted(a + b) == list(range(40))
    assert r1["wrote"] == []  # rank 1 wrote nothing
    assert {"config.json", "metrics.csv", "curves.png", "last", "best", "summary.json", "eval/best-test.json",
            "eval/best-test-confusion.png"} <= set(r0["wrote"])

    run = tmp_path / "runs" / "ddp"
    assert sorted(os.listdir(tmp_path / "runs")) == ["ddp"]
    assert sorted(os.listdir(run)) == ["best", "config.json", "curves.png", "eval", "last", "metrics.csv", "summary.json"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["run"]["world_size"] == 2 and cfg["run"]["steps_per_epoch"] == 5
    s = json.loads((run / "summary.json").read_text())
    assert s["world_size"] == 2 and s["test_samples"] == 10  # 5 + 5, reduced over ranks by torchmetrics
    ev = json.loads((run / "eval" / "best-test.json").read_text())
    assert sum(map(sum, ev["confusion"])) == 10 and ev["acc"] == s["test_acc"]
    st = TrainState.load(run / "last")
    assert st.global_step == 5 and len(st.sums) == 2 and len(st.rng) == 2
    assert p.stdout.count("epoch 1/1") == 1  # only rank 0 prints
