"""archzoo bench: every figure present in the JSON, ratios, interleaving, clear errors."""
from __future__ import annotations

import json

import pytest

from archzoo.bench import BenchSpec, bench, ratios
from archzoo.cli.main import main


def test_bench_cli_writes_every_figure_and_ratios(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "mobilenetv2_035", "mobilenetv2_050", "--img-size", "32", "--batch", "2",
               "--repeats", "1", "--vs", "mobilenetv2_050", "--out", str(out), "--train"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "mobilenetv2_035 vs mobilenetv2_050: throughput x" in text
    data = json.loads(out.read_text())
    r = data["results"][0]
    for key in ("params", "gflops", "throughput", "latency_ms", "latency_p90_ms", "train_throughput", "peak_memory_mb"):
        assert r[key] is not None and r[key] > 0, key
    assert r["params"] == 1_680_000 or abs(r["params"] - 1.68e6) < 5e4
    assert data["ratios"][0]["vs"] == "mobilenetv2_050"


def test_deploy_vs_eval_form(capsys):
    assert main(["bench", "mobilenetv2_035", "--deploy", "--vs", "--img-size", "32", "--batch", "2",
                 "--repeats", "2", "--no-memory"]) == 0
    assert "mobilenetv2_035 (deploy) vs mobilenetv2_035" in capsys.readouterr().out


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
