"""Export a model (optionally in its deploy form) to ONNX, TorchScript or a torch.export program.

ONNX files are checked by running them in onnxruntime against PyTorch on the same input.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from archzoo.errors import ConfigError, ExportError  # ExportError re-exported: its home is archzoo.errors

__all__ = ["FORMATS", "ExportError", "ExportResult", "export_model"]

FORMATS = ("onnx", "torchscript", "exported-program")


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float | None  # exported runtime vs PyTorch on the same input
    batch_sizes_checked: tuple[int, ...] = ()
    note: str = ""


class _Single(nn.Module):
    """forward(x) -> model(x): exporters see one plain tensor argument whatever the model's signature."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"


def _check_onnx(path: Path, model: nn.Module, x: torch.Tensor) -> tuple[float, tuple[int, ...]]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("checking ONNX files needs onnxruntime: pip install 'archzoo[export]'") from None
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    worst, sizes = 0.0, []
    for n in sorted({x.shape[0], x.shape[0] + 1}):  # a second batch size proves the dynamic axis
        xi = torch.randn(n, *x.shape[1:], generator=torch.Generator().manual_seed(n))
        with torch.no_grad():
            ref = model(xi).float().numpy()
        got = sess.run(None, {name: xi.numpy()})[0]
        worst = max(worst, float(abs(got - ref).max()))
        sizes.append(n)
    return worst, tuple(sizes)


def export_model(model: nn.Module, fmt: str, out: str | Path, img_size: int = 224, in_chans: int = 3,
                 batch: int = 2, check: bool = True, opset: int = 18) -> ExportResult:
    """Write ``model`` (eval mode, float32) in format ``fmt`` with a dynamic batch axis."""
    from archzoo.validation import check_input

    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    for flag, value in (("img_size", img_size), ("in_chans", in_chans), ("batch", batch)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"export: {flag} must be a positive integer, got {value!r}")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"output {out} is a folder; give a file name")
    if out.parent and not out.parent.is_dir():
        raise ExportError(f"output folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK):
        raise ExportError(f"output folder {out.parent} is not writable")
    x = torch.randn(batch, in_chans, img_size, img_size)
    check_input(model, x)  # an input the model cannot take is the user's to fix, not an export failure
    model = _Single(model.eval().float()).eval()
    note = ""
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if fmt == "onnx":
            try:
                import onnx  # noqa: F401
            except ImportError:
                raise ExportError("ONNX export needs onnx: pip install 'archzoo[export]'") from None
            try:
                # The TorchScript-based exporter: fast, and the one most runtimes are tested against.
                torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                                  opset_version=opset, dynamo=False)
            except Exception as e:
                # Some ops (e.g. Unfold in HaloNet's attention) need the torch.export-based exporter.
                note = f"TorchScript-based ONNX exporter failed ({_first_line(e)[:100]}); used the dynamo exporter"
                try:
                    batch_dim = torch.export.Dim("batch", min=1, max=1024)
                    torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["logits"],
                                      dynamic_shapes=({0: batch_dim},), dynamo=True, verbose=False)
                except Exception as e2:
                    raise ExportError(f"cannot export to ONNX: {_first_line(e)}; dynamo exporter: {_first_line(e2)}") from None
        elif fmt == "torchscript":
            try:
                scripted = torch.jit.trace(model, x, check_trace=False)
                scripted.save(str(tmp))
            except Exception as e:
                raise ExportError(f"cannot export to TorchScript: {_first_line(e)}") from None
        else:
            try:
                batch_dim = torch.export.Dim("batch", min=1, max=1024)
                prog = torch.export.export(model, (x,), dynamic_shapes=({0: batch_dim},))
                torch.export.save(prog, str(tmp))
            except Exception as e:
                raise ExportError(f"cannot export with torch.export: {_first_line(e)}") from None
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    diff, sizes = None, ()
    if check:
        if fmt == "onnx":
            diff, sizes = _check_onnx(out, model, x)
        else:
            loaded = torch.jit.load(str(out)) if fmt == "torchscript" else torch.export.load(str(out)).module()
            with torch.no_grad():
                diff = float((loaded(x) - model(x)).abs().max())
            sizes = (batch,)
    return ExportResult(out, fmt, diff, sizes, note)
