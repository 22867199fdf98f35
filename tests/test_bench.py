"""archzoo bench: every figure present in the JSON, ratios, interleaving, clear errors."""
from __future__ import annotations

import json

import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

from archzoo.bench import BenchSpec, bench, ratios
from archzoo.cli.main import main


def _timm_params_and_gflops(name: str, img_size: int) -> tuple[int, float]:
    """Counted here on timm's own model, without archzoo: parameters and FLOPs (2 per multiply-add)."""
    model = timm.create_model(name).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, img_size, img_size))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops() / 1e9


def test_bench_cli_writes_every_figure_and_ratios(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "mobilenetv2_035", "mobilenetv2_050", "--img-size", "32", "--batch", "2",
               "--repeats", "1", "--vs", "mobilenetv2_050", "--out", str(out), "--train"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mobilenetv2_035 vs mobilenetv2_050: throughput x" in text
    data = json.loads(out.read_text())
    r, base = data["results"]
    assert (r["name"], base["name"]) == ("mobilenetv2_035", "mobilenetv2_050")
    for key in ("params", "gflops", "throughput", "latency_ms", "latency_p90_ms", "train_throughput", "peak_memory_mb"):
        assert r[key] is not None and r[key] > 0, key
    for row in (r, base):
        params, gflops = _timm_params_and_gflops(row["name"], 32)
        assert row["params"] == params and row["gflops"] == pytest.approx(gflops, rel=1e-12), row["name"]
    (vs,) = data["ratios"]
    assert (vs["name"], vs["vs"]) == ("mobilenetv2_035", "mobilenetv2_050")
    assert vs["throughput_ratio"] == pytest.approx(r["throughput"] / base["throughput"])
    assert vs["latency_ratio"] == pytest.approx(r["latency_ms"] / base["latency_ms"])
    assert vs["train_throughput_ratio"] == pytest.approx(r["train_throughput"] / base["train_throughput"])


def test_deploy_vs_eval_form(tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["bench", "mobilenetv2_035", "--deploy", "--vs", "--img-size", "32", "--batch", "2",
                 "--repeats", "2", "--no-memory", "--out", str(out)]) == 0
    assert "mobilenetv2_035 (deploy) vs mobilenetv2_035" in capsys.readouterr().out
    rows = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    fused, plain = rows["mobilenetv2_035 (deploy)"], rows["mobilenetv2_035"]
    # every BatchNorm folds into its bias-free conv: its weight and bias go, the conv gains a bias
    model = timm.create_model("mobilenetv2_035")
    bn = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert plain["params"] == sum(p.numel() for p in model.parameters())
    assert fused["params"] == plain["params"] - sum(m.num_features for m in bn)
    assert fused["gflops"] == plain["gflops"]  # FLOPs are those of the eval form


@pytest.mark.parametrize("argv, message", [
    (["bench", "mobilenetv2_035", "--device", "tpu"], "unknown device 'tpu'"),
    (["bench", "mobilenetv2_035", "--batch", "0"], "--batch must be at least 1"),
    (["bench", "mobilenetv2_035", "--vs"], "--vs without a model compares deploy"),
    (["bench", "mobilenetv2_03"], "unknown model"),
])
def test_bad_input(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_ratios_need_a_known_baseline():
    res = bench([BenchSpec("mobilenetv2_035")], img_size=32, batch=1, repeats=1, memory=False, progress=False)
    with pytest.raises(ValueError, match="is not among the benchmarked models"):
        ratios(res, "resnet50")
