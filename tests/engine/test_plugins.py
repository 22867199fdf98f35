"""A task and a method defined only in tests/engine/denoise_plugin.py go through the whole engine:
`archzoo train` -> SIGKILL mid-epoch -> `--resume` (bit-identical weights) -> `archzoo eval`, and
`torchrun --nproc_per_node=2`, with nothing in archzoo naming them."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from archzoo.checkpoint import read_state_dict
from archzoo.cli.main import main
from archzoo.engine.state import TrainState

PLUGIN = str(Path(__file__).with_name("denoise_plugin.py"))
# 600 training images / batch 50 = 12 steps per epoch, 2 epochs; last/ every 4 steps
ARGS = ["train", "--plugin", PLUGIN, "--task", "denoise-digits", "--method", "loss-weight", "--loss-weight", "0.5",
        "--noise", "0.25", "--width", "6", "--img-size", "12", "--batch-size", "50", "--epochs", "2", "--lr", "3e-3",
        "--ckpt-steps", "4", "--seed", "3", "--threads", "1", "--quiet"]
PAUSE_AT = 18  # epoch 2, step 6: two updates after the mid-epoch checkpoint at step 4 are lost


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def _same(a: Path, b: Path) -> None:
    sa, sb = read_state_dict(a), read_state_dict(b)
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa), [k for k in sa if not torch.equal(sa[k], sb[k])]


def test_plugin_task_and_method_train_kill_resume_eval(tmp_path, capsys):
    from tests.engine.test_resume import sigkill_after_step

    assert main([*ARGS, "--output", str(tmp_path), "--name", "straight"]) == 0
    straight = tmp_path / "straight"
    rows = (straight / "metrics.csv").read_text().splitlines()
    # the columns come from the task (loss; loss, psnr) and the method (unweighted_loss)
    assert rows[0] == "epoch,steps,lr,train_loss,train_unweighted_loss,val_loss,val_psnr,epoch_seconds,samples_per_s"
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["primary_metric"] == "psnr" and summary["task"] == "denoise-digits"
    # learning happened: the denoiser beats its noisy input (PSNR of N(0, 0.25) noise on [0, 1] is 12.0 dB)
    assert summary["test_psnr"] > 13.0, summary

    run = tmp_path / "killed"
    assert sigkill_after_step([*ARGS, "--output", str(tmp_path), "--name", "killed"], PAUSE_AT, cwd=tmp_path) == -signal.SIGKILL
    st = TrainState.load(run / "last")
    assert (st.epoch, st.step_in_epoch, st.global_step) == (1, 4, 16)
    assert st.log_keys == ["loss", "unweighted_loss"]
    # resumed from another folder: the plug-in is found through the path recorded in config.json
    done = subprocess.run([sys.executable, "-m", "archzoo", "train", "--resume", str(run), "--quiet"],
                          capture_output=True, text=True, env=_env(), timeout=600, cwd="/")
    assert done.returncode == 0, done.stderr
    for rel in ("last/model.safetensors", "best/model.safetensors"):
        _same(straight / rel, run / rel)
    cut = lambda p: [r.split(",")[:-2] for r in (p / "metrics.csv").read_text().splitlines()]  # noqa: E731
    assert cut(straight) == cut(run)

    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run), "--quiet"]) == 0
    res = json.loads((run / "eval" / "best-test.json").read_text())
    s2 = json.loads((run / "summary.json").read_text())
    assert res["psnr"] == s2["test_psnr"] == summary["test_psnr"]
    assert (run / "eval" / "best-test-psnr.txt").read_text().strip() == f"{res['psnr']:.6f}"


def test_plugin_options_reach_only_their_owner(tmp_path, capsys):
    rc = main(["train", "--plugin", PLUGIN, "--noise", "0.2", "--output", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--noise is an option of task denoise-digits" in err[0], err
    rc = main(["train", "--plugin", PLUGIN, "--task", "denoise-digits", "--noise", "-1", "--output", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["archzoo train: error: --noise must be > 0, got -1.0"], err
    rc = main(["train", "--plugin", PLUGIN, "--task", "denoise-digits", "--method", "multires", "--train-sizes", "8",
               "--output", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "method multires works with task(s) classification, not denoise-digits" in err[0], err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")
def test_plugin_under_torchrun(tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "archzoo",
           *[a for a in ARGS if a != "--ckpt-steps" and a != "4"], "--epochs", "1", "--device", "cpu",
           "--output", str(tmp_path), "--name", "ddp"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    st = TrainState.load(tmp_path / "ddp" / "last")
    assert st.world_size == 2 and st.global_step == 6 and len(st.rng) == 2  # 600 / 2 ranks / 50
    s = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert s["test_samples"] == 100 and s["world_size"] == 2  # 50 + 50, reduced over the ranks by torchmetrics
