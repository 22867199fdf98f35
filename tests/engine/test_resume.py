"""A training process SIGKILLed mid-epoch and resumed ends with the same weights, bit for bit, as
one never interrupted (CPU, same seed and thread count), EMA, drop-path RNG and gradient clipping
included."""
from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from archzoo.checkpoint import read_state_dict
from archzoo.cli.main import main
from archzoo.engine.state import TrainState

# 48 images / batch 8 = 6 steps per epoch, 2 epochs; last/ is written every 2 steps
ARGS = [
    "train", "--model", "mobilenetv2_050", "--data", "synthetic:classes=4,train=48,val=16,test=16",
    "--img-size", "32", "--batch-size", "8", "--epochs", "2", "--ckpt-steps", "2", "--ema", "--drop-path", "0.1",
    "--clip-grad", "1.0", "--seed", "5", "--threads", "1", "--quiet",
]
PAUSE_AT = 9  # epoch 2, step 3: one update after the mid-epoch checkpoint at step 2 is lost by the kill


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _wait_for_line(proc: subprocess.Popen, needle: str, timeout: float) -> str:
    sel = selectors.DefaultSelector()
    assert proc.stderr is not None
    sel.register(proc.stderr, selectors.EVENT_READ)
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            seen += proc.stderr.read().decode()
            raise AssertionError(f"training exited ({proc.returncode}) before pausing: {seen[-2000:]}")
        if sel.select(timeout=1.0):
            line = proc.stderr.readline().decode()
            seen += line
            if needle in line:
                return seen
    raise AssertionError(f"no {needle!r} within {timeout}s: {seen[-2000:]}")


def sigkill_after_step(archzoo_args: list[str], step: int, cwd: Path | None = None) -> int:
    """Run `archzoo ARGS` in a subprocess, SIGKILL it once it has finished optimizer step ``step``;
    returns its exit status."""
    proc = subprocess.Popen([sys.executable, "-m", "archzoo", *archzoo_args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=_env(ARCHZOO_DEBUG_PAUSE_AT_STEP=str(step)), cwd=cwd)
    try:
        _wait_for_line(proc, f"paused after step {step}", timeout=600)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode


def _same_tensors(a: Path, b: Path) -> None:
    sa, sb = read_state_dict(a), read_state_dict(b)
    assert sa.keys() == sb.keys()
    diff = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not diff, f"{len(diff)} tensors differ, e.g. {diff[:3]}"


def _metrics(run: Path) -> list[list[str]]:
    rows = [ln.split(",") for ln in (run / "metrics.csv").read_text().splitlines()]
    return [r[:-2] for r in rows]  # drop the timing columns


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path):
    threads = torch.get_num_threads()
    try:
        assert main([*ARGS, "--output", str(tmp_path), "--name", "straight"]) == 0
    finally:
        torch.set_num_threads(threads)
    straight = tmp_path / "straight"

    run = tmp_path / "killed"
    assert sigkill_after_step([*ARGS, "--output", str(tmp_path), "--name", "killed"], PAUSE_AT) == -signal.SIGKILL
    st = TrainState.load(run / "last")
    assert (st.epoch, st.step_in_epoch, st.global_step) == (1, 2, 8)  # mid-epoch checkpoint
    assert not (run / "summary.json").exists()

    done = subprocess.run([sys.executable, "-m", "archzoo", "train", "--resume", str(run), "--quiet"],
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stdout and "epoch 2, step 2" in done.stdout

    for rel in ("last/model.safetensors", "last/ema.safetensors", "best/model.safetensors"):
        _same_tensors(straight / rel, run / rel)
    assert _metrics(straight) == _metrics(run)
    s1, s2 = (json.loads((r / "summary.json").read_text()) for r in (straight, run))
    assert (s1["test_acc"], s1["best_epoch"], s1["global_step"]) == (s2["test_acc"], s2["best_epoch"], s2["global_step"])
    assert (straight / "eval" / "best-test.json").read_text() == (run / "eval" / "best-test.json").read_text().replace("killed", "straight")
