"""``archzoo train`` / ``archzoo eval`` in-process: a tiny run and its files, eval reproducing the
run's test accuracy, and every bad input of issue 3 point 7 (one line, exit 2, no folder left)."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from archzoo.cli.main import main
from archzoo.engine.state import TrainState

MODEL = "mobilenetv2_050"
DATA = "synthetic:classes=4,train=32,val=16,test=16"
TINY = ["--model", MODEL, "--data", DATA, "--img-size", "32", "--batch-size", "16", "--quiet"]


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_user_error(rc, err, *needles):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1, f"expected one line, got: {err!r}"
    assert lines[0].startswith(("archzoo train: error: ", "archzoo eval: error: ")), lines[0]
    for n in needles:
        assert n in lines[0], lines[0]


def _nothing_left(root: Path) -> None:
    assert not root.exists() or list(root.iterdir()) == [], list(root.iterdir())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One 2-epoch run shared by the tests below."""
    root = tmp_path_factory.mktemp("runs")
    rc = main(["train", *TINY, "--epochs", "2", "--output", str(root), "--name", "r"])
    assert rc == 0
    return root / "r"


def test_run_folder_contents(tiny_run):
    names = sorted(os.listdir(tiny_run))
    assert names == ["best", "config.json", "curves.png", "eval", "last", "metrics.csv", "summary.json"], names
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["train"]["model"] == MODEL and cfg["train"]["epochs"] == 2 and cfg["run"]["num_classes"] == 4
    rows = (tiny_run / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,steps,lr,train_loss,train_acc,val_loss,val_acc") and len(rows) == 3
    assert (tiny_run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for ck in ("last", "best"):
        assert {"model.safetensors", "state.pt", "meta.json"} <= set(os.listdir(tiny_run / ck))
    assert TrainState.load(tiny_run / "last").epoch == 2
    s = json.loads((tiny_run / "summary.json").read_text())
    metrics = list(csv.DictReader(open(tiny_run / "metrics.csv")))
    best = max(metrics, key=lambda r: float(r["val_acc"]))
    assert s["best_epoch"] == int(best["epoch"]) and s["best_val_acc"] == float(best["val_acc"])
    # the reported test accuracy is that of the best checkpoint, recomputed here by hand: the best
    # weights through the library's safe loader, the test split, argmax, count
    import archzoo
    from archzoo.data import DataOptions, build_data

    m = archzoo.create_model(MODEL, num_classes=4, checkpoint_path=str(tiny_run / "best" / "model.safetensors")).eval()
    test = build_data(DATA, DataOptions(32, 3, augment=False, splits=("test",))).split("test")
    x = torch.stack([test[i][0] for i in range(len(test))])
    y = torch.tensor([test[i][1] for i in range(len(test))])
    with torch.no_grad():
        logits = m(x)
    correct = int((logits.argmax(1) == y).sum())
    assert s["test_samples"] == 16 and s["test_acc"] == pytest.approx(100.0 * correct / 16, abs=1e-4)
    loss = float(torch.nn.functional.cross_entropy(logits, y))
    assert s["test_loss"] == pytest.approx(loss, rel=1e-5)


def test_eval_reproduces_the_run(tiny_run, capsys, tmp_path):
    summary = json.loads((tiny_run / "summary.json").read_text())
    rc, out, err = _run(["eval", "--checkpoint", str(tiny_run), "--quiet"], capsys)
    assert rc == 0, err
    res = json.loads((tiny_run / "eval" / "best-test.json").read_text())
    assert res["acc"] == summary["test_acc"] and res["top5"] == summary["test_top5"] and res["n"] == 16
    assert res["top_k"] == 4  # 4 classes: top-5 is top-4
    assert set(res["per_class"]) == {"c0", "c1", "c2", "c3"}
    assert sum(map(sum, res["confusion"])) == 16
    assert (tiny_run / "eval" / "best-test-confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert f"top-1 {summary['test_acc']:.2f}%" in out
    # the same weights as a timm-style checkpoint (DDP prefix, 'state_dict' wrapper) go through the converter
    from archzoo.checkpoint import read_state_dict

    sd = read_state_dict(tiny_run / "best" / "model.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, tmp_path / "timm.pth")
    rc, out, err = _run(["eval", "--checkpoint", str(tmp_path / "timm.pth"), "--model", MODEL, "--data", DATA,
                         "--img-size", "32", "--output", str(tmp_path / "ev"), "--quiet"], capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "ev" / "timm-test.json").read_text())["acc"] == summary["test_acc"]


def test_resume_refuses_changed_options(tiny_run, capsys):
    rc, _, err = _run(["train", "--resume", str(tiny_run), "--lr", "0.1"], capsys)
    _assert_user_error(rc, err, "drop --lr")
    rc, out, err = _run(["train", "--resume", str(tiny_run), "--quiet"], capsys)  # finished: re-reports
    assert rc == 0, err
    assert "already finished its 2 epoch(s)" in out and "resuming" not in out, out
    # the run folder stands on a line of its own, whole, however long the path
    assert f"run folder: {tiny_run}" in out.splitlines(), out


# ---- point 7: bad inputs ------------------------------------------------------------------------
def test_missing_dataset_path(tmp_path, capsys):
    rc, _, err = _run(["train", *TINY, "--data", f"imagefolder:{tmp_path / 'nope'}", "--output", str(tmp_path / "runs")], capsys)
    _assert_user_error(rc, err, "dataset path", "nope does not exist")
    _nothing_left(tmp_path / "runs")


def test_imagefolder_without_images(tmp_path, capsys):
    for split in ("train", "val"):
        (tmp_path / "d" / split / "cls").mkdir(parents=True)
    rc, _, err = _run(["train", *TINY, "--data", f"imagefolder:{tmp_path / 'd'}", "--output", str(tmp_path / "runs")], capsys)
    _assert_user_error(rc, err, "has no images")
    _nothing_left(tmp_path / "runs")


def test_input_size_the_model_cannot_take(tmp_path, capsys):
    rc, _, err = _run(["train", *TINY, "--img-size", "16", "--output", str(tmp_path / "runs")], capsys)
    _assert_user_error(rc, err, f"model {MODEL} cannot take 3x16x16 inputs", "at least 32x32")
    _nothing_left(tmp_path / "runs")


def test_checkpoint_of_another_model(tmp_path, capsys, tiny_run):
    import timm

    from archzoo.checkpoint import save_safetensors

    other = timm.create_model("mobilenetv2_035", num_classes=4)
    save_safetensors(other.state_dict(), tmp_path / "other.safetensors")
    rc, _, err = _run(["train", *TINY, "--init-checkpoint", str(tmp_path / "other.safetensors"),
                       "--output", str(tmp_path / "runs")], capsys)
    _assert_user_error(rc, err, "does not fit model", "another model than mobilenetv2_050")
    _nothing_left(tmp_path / "runs")
    rc, _, err = _run(["eval", "--checkpoint", str(tmp_path / "other.safetensors"), "--model", MODEL, "--data", DATA,
                       "--img-size", "32", "--output", str(tmp_path / "ev")], capsys)
    _assert_user_error(rc, err, "does not fit model")
    _nothing_left(tmp_path / "ev")
    rc, _, err = _run(["eval", "--checkpoint", str(tiny_run / "best"), "--model", "mobilenetv2_035"], capsys)
    _assert_user_error(rc, err, "is a checkpoint of mobilenetv2_050, not mobilenetv2_035")


def test_unwritable_run_dir(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, _, err = _run(["train", *TINY, "--output", str(tmp_path / "afile" / "runs")], capsys)
    _assert_user_error(rc, err, "cannot create run folder", "is a file")
    assert (tmp_path / "afile").read_text() == "x"
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        rc, _, err = _run(["train", *TINY, "--output", str(ro)], capsys)
        _assert_user_error(rc, err, "not writable")
        _nothing_left(ro)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "r").mkdir()
    rc, _, err = _run(["train", *TINY, "--output", str(tmp_path / "taken"), "--name", "r"], capsys)
    _assert_user_error(rc, err, "already exists", "--resume")


@pytest.mark.parametrize("flags,needle", [
    (["--epochs", "0"], "--epochs must be a positive integer, got 0"),
    (["--epochs", "-2"], "--epochs must be a positive integer, got -2"),
    (["--lr", "-0.1"], "--lr must be a positive number, got -0.1"),
    (["--lr", "0"], "--lr must be a positive number, got 0.0"),
    (["--batch-size", "64"], "too few for --batch-size 64"),
    (["--model", "no_such_net"], "unknown model 'no_such_net'"),
])
def test_bad_options(tmp_path, capsys, flags, needle):
    rc, _, err = _run(["train", *TINY, *flags, "--output", str(tmp_path / "runs")], capsys)
    _assert_user_error(rc, err, needle)
    _nothing_left(tmp_path / "runs")


def test_failure_before_first_checkpoint_leaves_nothing(tmp_path, capsys):
    # a learning rate this large makes the loss non-finite within the first epoch
    rc, _, err = _run(["train", *TINY, "--lr", "1e30", "--warmup-epochs", "0", "--batch-size", "4", "--output", str(tmp_path / "runs")], capsys)
    _assert_user_error(rc, err, "loss is")
    _nothing_left(tmp_path / "runs")


def test_convbn_tune_and_multires_flags_train(tmp_path, capsys):
    import json

    from archzoo.checkpoint import read_state_dict
    from archzoo.engine.checkpoints import find_checkpoint

    rc, out, err = _run(["train", "--model", "mobilenetv2_035", "--data", DATA, "--img-size", "32", "--epochs", "1",
                         "--batch-size", "16", "--method", "convbn", "--convbn-mode", "tune", "--quiet", "--output",
                         str(tmp_path), "--name", "t"], capsys)
    assert rc == 0, err
    run = tmp_path / "t"
    cfg = json.loads((run / "config.json").read_text())["train"]
    assert cfg["methods"] == ["convbn"] and cfg["method_options"] == {"convbn": {"convbn_mode": "tune"}}
    # a Tune-mode checkpoint loads into the plain model (same keys)
    import archzoo

    plain = archzoo.create_model("mobilenetv2_035", num_classes=4)
    plain.load_state_dict(read_state_dict(find_checkpoint(run, "best") / "model.safetensors"))
    rc, out, err = _run(["train", "--model", "resformer_tiny_patch16", "--data", DATA, "--method", "multires", "--train-sizes", "32", "16",
                         "--epochs", "1", "--batch-size", "16", "--lr", "1e-3", "--quiet", "--output", str(tmp_path),
                         "--name", "mr"], capsys)
    assert rc == 0, err
    cfg = json.loads((tmp_path / "mr" / "config.json").read_text())["train"]
    assert cfg["method_options"]["multires"]["train_sizes"] == [32, 16] and cfg["img_size"] == 32
    assert "train_consistency" in (tmp_path / "mr" / "metrics.csv").read_text().splitlines()[0]
    rc, out, err = _run(["train", "--data", DATA, "--method", "multires", "--train-sizes", "32", "-5", "--output", str(tmp_path)], capsys)
    _assert_user_error(rc, err, "--train-sizes")
    rc, out, err = _run(["train", "--data", DATA, "--train-sizes", "32", "--output", str(tmp_path)], capsys)
    _assert_user_error(rc, err, "--train-sizes is an option of method multires", "add --method")


def test_max_steps_stops_mid_epoch_and_resume_matches_uninterrupted(tiny_run, tmp_path):
    """--max-steps 3 (of 2 steps per epoch x 2) stops in epoch 2 after its first step, validated and
    checkpointed there; --resume --max-steps 0 finishes the run with the uninterrupted run's weights."""
    from safetensors.torch import load_file

    rc = main(["train", *TINY, "--epochs", "2", "--max-steps", "3", "--output", str(tmp_path), "--name", "s"])
    assert rc == 0
    run = tmp_path / "s"
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[2].startswith("2,1,"), rows  # epoch 2 after 1 of its 2 steps
    st = TrainState.load(run / "last")
    assert (st.epoch, st.step_in_epoch, st.global_step) == (1, 1, 3), st
    assert json.loads((run / "summary.json").read_text())["global_step"] == 3
    assert main(["train", "--resume", str(run), "--max-steps", "0", "--quiet"]) == 0
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[2].startswith("2,2,"), rows  # the partial row was replaced
    a = load_file(str(run / "last" / "model.safetensors"))
    b = load_file(str(tiny_run / "last" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_max_steps_must_not_be_negative(capsys, tmp_path):
    rc, _, err = _run(["train", *TINY, "--max-steps", "-1", "--output", str(tmp_path)], capsys)
    _assert_user_error(rc, err, "--max-steps")
    _nothing_left(tmp_path)
