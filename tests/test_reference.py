"""Reference vectors: every file of ../shared/reference whose family archzoo implements must match
the authors' code; the pass/fail logic itself is tested on a file rewritten from one of them."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from archzoo.cli.main import main
from archzoo.reference import adapters, check_reference, read_reference, reference_dir

_DIR = reference_dir()
_FILES = sorted(_DIR.glob("*.safetensors")) if _DIR else []


@pytest.mark.skipif(_DIR is None, reason="reference vectors not found (../shared/reference, $ARCHZOO_REFERENCE_DIR)")
@pytest.mark.parametrize("path", _FILES, ids=[p.stem for p in _FILES])
def test_reference_file(path):
    family = read_reference(path).family
    if family not in adapters():
        pytest.skip(f"family {family!r}: no implementation yet")
    r = check_reference(path)
    assert r.ok, f"{path.name}: {r.status} rel={r.rel:.3e} (tol {r.tolerance:.0e}) {r.detail}"


def _implemented_file():
    for p in _FILES:
        if read_reference(p).family in adapters() and read_reference(p).dtype == torch.float64:
            return p
    pytest.skip("no implemented float64 reference family yet")


def _rewrite(src, dst, *, output_scale=None, family=None, drop_key=None, dtype=None):
    ref = read_reference(src)
    meta = dict(ref.meta)
    tensors = dict(ref.state_dict)
    for k, v in ref.inputs.items():
        tensors["__input__" + (f".{k}" if k else "")] = v
    for k, v in ref.outputs.items():
        tensors[k] = v * output_scale if output_scale is not None else v
    if family:
        meta["family"] = family
    if dtype:
        meta["dtype"] = dtype
    if drop_key:
        del tensors[drop_key]
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(dst), metadata=meta)
    return dst


@pytest.mark.skipif(_DIR is None, reason="reference vectors not found")
def test_pass_fail_logic(tmp_path):
    src = _implemented_file()
    assert check_reference(src).ok
    # 1e-6 relative is far above float64 tolerance (1e-9) but within float32's (1e-4)
    off = check_reference(_rewrite(src, tmp_path / "off.safetensors", output_scale=1 + 1e-6))
    assert off.status == "FAIL" and 5e-7 < off.rel < 2e-6
    loose = check_reference(_rewrite(src, tmp_path / "f32.safetensors", output_scale=1 + 1e-6, dtype="float32"))
    assert loose.ok
    none = check_reference(_rewrite(src, tmp_path / "none.safetensors", family="not_a_family"))
    assert none.status == "no implementation"
    key = next(iter(read_reference(src).state_dict))
    broken = check_reference(_rewrite(src, tmp_path / "broken.safetensors", drop_key=key))
    assert broken.status == "error" and "missing" in broken.detail


@pytest.mark.skipif(_DIR is None, reason="reference vectors not found")
def test_cli_reports_no_implementation_with_its_exit_code(tmp_path, capsys):
    src = _FILES[0]
    f = _rewrite(src, tmp_path / "x.safetensors", family="not_a_family")
    assert main(["reference", "check", str(f)]) == 3
    assert "no implementation" in capsys.readouterr().out
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    assert main(["reference", "check", str(bad)]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
