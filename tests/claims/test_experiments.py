"""Every claim experiment at the smoke budget: the whole code path in seconds, flat dicts of finite
floats with the expected keys, sane values, and the PNG when an output folder is given."""
from __future__ import annotations

import math

import pytest

from archzoo.claims import convbn, inceptionnext, resformer, simplenet, unireplknet


def _check(out: dict, keys: set[str]) -> None:
    assert isinstance(out, dict)
    assert keys <= set(out), f"missing {sorted(keys - set(out))}"
    for k, v in out.items():
        assert isinstance(k, str) and isinstance(v, float), (k, type(v))
        assert math.isfinite(v), (k, v)


def _png(path) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_budget_is_refused():
    with pytest.raises(ValueError, match="budget"):
        convbn.tune_gradients("medium")


def test_resformer_multires(tmp_path):
    out = resformer.multires_vs_single_res("smoke", tmp_path)
    sizes = resformer._SMOKE.test_sizes
    _check(out, {"unseen_gain", "mean_gain", "sr_unseen_mean_top1", "mr_unseen_mean_top1", "params",
                 *(f"sr_top1_{s}" for s in sizes), *(f"mr_top1_{s}" for s in sizes)})
    for k, v in out.items():
        if "top1" in k:
            assert 0.0 <= v <= 100.0, (k, v)
    assert out["unseen_gain"] == pytest.approx(out["mr_unseen_mean_top1"] - out["sr_unseen_mean_top1"])
    assert out["unseen_sizes"] == 1.0  # 24 px: neither 16 nor 8
    assert out["sr_steps"] == out["mr_steps"] == 3.0  # the same number of optimiser steps in both arms
    _png(tmp_path / "resformer_multires.png")


def test_convbn_memory(tmp_path):
    out = convbn.tune_memory("smoke", tmp_path)
    _check(out, {"memory_ratio", "activation_ratio", "eval_saved_mib", "tune_saved_mib", "pairs", "step_time_ratio"})
    assert out["pairs"] == 20.0  # ResNet-18: every conv, downsample convs included
    assert out["activation_ratio"] > 1.2  # the conv outputs are no longer kept (deterministic)
    assert out["memory_ratio"] > 0 and out["step_time_ratio"] > 0
    assert out["eval_other_mib"] < 0.1 < out["tune_other_mib"]  # Tune keeps W' for the conv backward
    _png(tmp_path / "convbn_memory.png")


def test_convbn_gradients(tmp_path):
    out = convbn.tune_gradients("smoke", tmp_path)
    _check(out, {"grad_rel_diff", "grad_rel_diff_fp32", "grad_global_rel_diff", "grad_global_rel_diff_fp32",
                 "output_rel_diff", "params_compared", "pairs"})
    assert out["grad_rel_diff"] < 1e-10  # float64: rounding only
    assert out["grad_global_rel_diff_fp32"] < 1e-3  # float32: rounding (and rare ReLU/max-pool tie flips)
    assert out["output_rel_diff"] < 1e-10
    assert out["params_compared"] == 62.0  # every parameter tensor of ResNet-18 has a gradient in both modes
    _png(tmp_path / "convbn_gradients.png")


def test_unireplknet_reparam(tmp_path):
    out = unireplknet.reparam_speedup("smoke", tmp_path)
    _check(out, {"speedup", "max_abs_diff", "max_rel_diff", "train_form_params", "deploy_form_params"})
    assert out["speedup"] > 0
    assert out["max_rel_diff"] < 1e-3  # float32 rounding of the fused kernels
    assert out["max_rel_diff_fp64"] < 1e-12
    assert out["deploy_form_params"] < out["train_form_params"]
    _png(tmp_path / "unireplknet_reparam.png")


def test_inceptionnext_throughput(tmp_path):
    out = inceptionnext.throughput_vs_convnext("smoke", tmp_path)
    _check(out, {"train_ratio", "infer_ratio", "inceptionnext_params", "convnext_params", "paper_train_ratio"})
    assert out["train_ratio"] > 0 and out["infer_ratio"] > 0
    assert out["paper_train_ratio"] == pytest.approx(901 / 575)
    _png(tmp_path / "inceptionnext_throughput.png")


def test_simplenet_default_run(tmp_path):
    out = simplenet.default_run_on_digits("smoke", tmp_path)
    _check(out, {"test_top1", "test_top5", "best_val_top1", "params", "steps"})
    from archzoo.papers import card_for_model

    _, variant = card_for_model(simplenet.MODEL)
    assert out["params"] == variant.reference_params  # the authors' code's count at 10 classes (the card's)
    assert 0.0 <= out["test_top1"] <= 100.0 and 0.0 <= out["test_top5"] <= 100.0
    assert out["steps"] == 3.0
    _png(tmp_path / "simplenet_digits.png")


def test_no_png_without_out_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    convbn.tune_gradients("smoke")
    assert not any(tmp_path.iterdir())
