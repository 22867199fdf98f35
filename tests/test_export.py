"""Export: ONNX round-trips through onnxruntime for one model per paper card that has models;
TorchScript and torch.export; clear errors."""
from __future__ import annotations

import pytest
import torch

import archzoo
from archzoo.cli.main import main
from archzoo.export import ExportError, export_model
from archzoo.papers import load_cards
from archzoo.validation import min_input_size
from archzoo.verify import build_on_meta, count_params

onnxruntime = pytest.importorskip("onnxruntime", reason="the [export] extra is not installed")


# Their ONNX export needs the torch.export-based exporter (Poincaré's custom autograd functions,
# HaloNet's Unfold): minutes on 2 cores, so they run with -m slow.
_SLOW_EXPORT = {"poincare_resnet20_8_16_32", "halonet_h0"}


def _smallest_model_per_card():
    for card in load_cards():
        names = sorted({v.model for v in card.variants if v.implemented})
        if not names:
            continue
        sized = sorted((count_params(build_on_meta(n)), n) for n in names)
        params, name = sized[0]
        marks = [pytest.mark.slow] if params > 40_000_000 or name in _SLOW_EXPORT else []
        yield pytest.param(name, marks=marks, id=f"{card.pid}-{name}")


@pytest.mark.parametrize("name", list(_smallest_model_per_card()))
def test_onnx_round_trip(name, tmp_path):
    model = archzoo.create_model(name, num_classes=10).eval()
    cfg = model.pretrained_cfg
    size = cfg["input_size"][-1] if cfg.get("fixed_input_size") else max(64, min_input_size(model))
    res = export_model(model, "onnx", tmp_path / "m.onnx", img_size=size)
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-3, res
    assert len(res.batch_sizes_checked) == 2  # the batch axis is dynamic


def _bn_model() -> torch.nn.Module:
    """mobilenetv2_035 in eval mode with random BatchNorm statistics (so train and eval forms differ)."""
    torch.manual_seed(0)
    model = archzoo.create_model("mobilenetv2_035", num_classes=10).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model


def test_onnx_file_computes_the_model(tmp_path):
    """Read back here with onnxruntime, not through export's own check: the eval-mode function, at a
    batch size other than the exported one."""
    model = _bn_model()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)  # before the export, which must not change the function either
    path = tmp_path / "m.onnx"
    res = export_model(model, "onnx", path, img_size=64)
    sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    err = float(abs(got - ref.numpy()).max())
    assert err < 1e-4 * float(ref.abs().max()), err
    assert res.max_abs_diff is not None and res.max_abs_diff < 1e-4 * float(ref.abs().max())


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
def test_other_formats(fmt, tmp_path):
    model = _bn_model()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
    path = tmp_path / "m.bin"
    res = export_model(model, fmt, path, img_size=64)
    assert res.max_abs_diff < 1e-5
    loaded = torch.jit.load(str(path)) if fmt == "torchscript" else torch.export.load(str(path)).module()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ref, rtol=1e-5, atol=1e-5)


def test_export_errors(tmp_path, capsys):
    model = archzoo.create_model("mobilenetv2_035")
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export_model(model, "tflite", tmp_path / "x")
    with pytest.raises(ExportError, match="does not exist"):
        export_model(model, "onnx", tmp_path / "nope" / "m.onnx")

    class Untraceable(torch.nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow
                return x
            return -x

    with pytest.raises(ExportError, match="cannot export with torch.export"):
        export_model(Untraceable(), "exported-program", tmp_path / "u.pt2", img_size=8)
    assert main(["export", "mobilenetv2_035", "--format", "onnx", "--out", str(tmp_path / "no" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_cli_deploy(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "mobilenetv2_035", "--format", "onnx", "--out", str(out), "--deploy", "--img-size", "64"]) == 0
    text = capsys.readouterr().out
    assert "52 Conv-BN pair(s) fused" in text and "max abs difference" in text and out.is_file()
