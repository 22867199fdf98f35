"""One error type for user mistakes (archzoo.errors.ArchzooError), and models' input rules as data.

A bug inside a model's forward keeps its type and traceback; a broken input rule is one InputError
line naming the model, the rule and the shape; the CLI turns ArchzooError, and only it, into one
line with exit code 2.
"""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import torch
from torch import nn

import archzoo
from archzoo import errors
from archzoo.cli import main as cli_main
from archzoo.errors import ArchzooError, CheckpointError, ConfigError, DataError, InputError, UnknownModelError
from archzoo.validation import InputRules, attach_input_checks, check_input, get_input_rules

ROOT = Path(archzoo.__file__).resolve().parent


class _DtypeBug(nn.Module):
    """A timm-style model whose forward has a dtype bug: float64 features times a float32 matrix."""

    def __init__(self, in_chans: int = 3, num_classes: int = 4) -> None:
        super().__init__()
        self.in_chans, self.num_classes = in_chans, num_classes
        self.stem = nn.Conv2d(in_chans, 8, 3, stride=2, padding=1)
        self.w = nn.Parameter(torch.randn(8, num_classes))
        self.feature_info = [dict(num_chs=8, reduction=2, module="stem")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x).mean((2, 3)).double() @ self.w.float()


class _ShapeBug(_DtypeBug):
    """A forward with a shape bug (also raised on the meta device, unlike the dtype bug)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x).mean((2, 3)) @ self.w.t()


class _FixedSize(nn.Module):
    """A model declaring its rules as data: a 3-channel 32x32 input only."""

    input_rules = InputRules(channels=3, min_size=8, fixed_size=(32, 32),
                             fixed_size_reason="its position embedding is sized for it")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).sum(1, keepdim=True)


# -- (a) a bug in the forward is not the user's input problem ---------------------------------------
def test_a_dtype_bug_in_the_forward_keeps_its_runtime_error():
    m = attach_input_checks(_DtypeBug(), "dtype_bug")
    with pytest.raises(RuntimeError) as info:
        m(torch.randn(2, 3, 16, 16))
    assert not isinstance(info.value, ArchzooError), info.value
    with pytest.raises(InputError, match=r"dtype_bug cannot take an input of shape \(2, 1, 16, 16\) \(channels rule\)"):
        m(torch.randn(2, 1, 16, 16))  # the same model still refuses inputs that break its rules


def test_an_out_of_memory_in_the_forward_keeps_its_type():
    class _Oom(nn.Module):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    m = attach_input_checks(_Oom(), "oom")
    with pytest.raises(torch.OutOfMemoryError):
        m(torch.randn(1, 3, 8, 8))


def test_no_forward_wrapper_is_left():
    import archzoo.validation as v

    assert not hasattr(v, "_guarded_forward")
    m = archzoo.create_model("mobilenetv2_035", num_classes=3)
    assert "forward" not in m.__dict__  # the class's own forward; the check is a pre-hook


# -- (b) rules as data: one line naming the model, the rule and the input ---------------------------
@pytest.mark.parametrize("shape, rule, needle", [
    ((3, 32, 32), "ndim", "4-D image batch"),
    ((1, 1, 32, 32), "channels", "expects 3 input channel(s), got 1"),
    ((1, 3, 4, 4), "min_size", "at least 8x8"),
    ((1, 3, 48, 32), "fixed_size", "built for, 32x32 (its position embedding is sized for it), got 48x32"),
])
def test_a_broken_rule_is_one_input_error_line(shape, rule, needle):
    m = attach_input_checks(_FixedSize(), "fixed_net")
    with pytest.raises(InputError) as info:
        m(torch.zeros(shape))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"fixed_net cannot take an input of shape {shape} ({rule} rule): "), msg
    assert needle in msg
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 1)


def test_multiple_and_window_rules():
    r = InputRules(channels=3, min_size=16, multiple=16, multiple_reason="its 16x16 patches")
    assert r.fits((1, 3, 224, 240)) and r.violation((1, 3, 230, 224))[0] == "multiple"
    w = InputRules(min_size=32, windows=((16, 4, 4),))  # 'same' padding: ceil(H / 16) must divide by 4
    assert w.fits((1, 3, 64, 64)) and w.fits((1, 3, 50, 64))  # ceil(50 / 16) = 4
    rule, why = w.violation((1, 3, 48, 48))
    assert rule == "windows" and "3x3 map at stride 16" in why and "multiple of 64x64" in why


def test_rules_of_timm_models_come_from_their_patch_embedding():
    with torch.device("meta"):
        vit = archzoo.create_model("vit_tiny_patch16_224", num_classes=2)
        dyn = archzoo.create_model("vit_tiny_patch16_224", num_classes=2, dynamic_img_size=True)
    assert get_input_rules(vit).fixed_size == (224, 224)
    with pytest.raises(InputError, match=r"\(fixed_size rule\).*224x224.*got 256x256"):
        vit(torch.empty(1, 3, 256, 256, device="meta"))
    assert get_input_rules(dyn).fixed_size is None and get_input_rules(dyn).multiple == 16
    with pytest.raises(InputError, match=r"\(multiple rule\)"):
        dyn(torch.empty(1, 3, 230, 230, device="meta"))


def test_model_rules_declared_by_families():
    with torch.device("meta"):
        moat = archzoo.create_model("tiny_moat_0", window_size=(None, None, (14, 14), (7, 7)))
        sg = archzoo.create_model("sgformer_s")
    assert get_input_rules(moat).windows == ((16, 14, 14), (32, 7, 7))
    assert get_input_rules(sg).fixed_size == (224, 224)
    with pytest.raises(InputError, match="window"):
        moat(torch.empty(1, 3, 192, 192, device="meta"))
    check_input(sg, torch.empty(1, 3, 224, 224, device="meta"))  # fits: no error


def test_resolve_model_kwargs_rebuilds_fixed_size_models_and_names_the_rule():
    from archzoo.engine.modeling import resolve_model_kwargs

    kw = resolve_model_kwargs("vit_tiny_patch16_224", 4, 3, 64)
    assert kw["img_size"] == 64 and kw["num_classes"] == 4
    with pytest.raises(InputError, match=r"model mobilenetv2_035 cannot take 3x16x16 inputs \(min_size rule\).*32x32"):
        resolve_model_kwargs("mobilenetv2_035", 4, 3, 16)
    with pytest.raises(ConfigError, match="no_such_option"):
        resolve_model_kwargs("mobilenetv2_035", 4, 3, 32, {"no_such_option": 1})


def test_resolve_model_kwargs_lets_a_bug_in_the_forward_through(monkeypatch):
    import archzoo.engine.modeling as modeling

    monkeypatch.setattr(modeling, "create_model",
                        lambda name, **kw: attach_input_checks(_ShapeBug(kw["in_chans"], kw["num_classes"]), name))
    with pytest.raises(RuntimeError) as info:
        modeling.resolve_model_kwargs("mobilenetv2_035", 4, 3, 32)
    assert not isinstance(info.value, ArchzooError)


# -- (c) the command line: ArchzooError -> one line and exit 2, anything else -> traceback ------------
def _patch_verify(monkeypatch, exc: BaseException) -> None:
    import archzoo.cli.verify_cmd as verify_cmd

    def run(args):
        raise exc

    monkeypatch.setattr(verify_cmd, "run", run)


@pytest.mark.parametrize("exc, line", [
    (DataError("dataset path /nope does not exist"), "archzoo verify: error: dataset path /nope does not exist"),
    (UnknownModelError("unknown model 'x'. See `archzoo list`."), "archzoo verify: error: unknown model 'x'. See `archzoo list`."),
    (CheckpointError("Caught CheckpointError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
                     '  File "x.py", line 1, in f\narchzoo.errors.CheckpointError: checkpoint not found: /a.pth'),
     "archzoo verify: error: checkpoint not found: /a.pth"),
])
def test_cli_turns_an_archzoo_error_into_one_line(monkeypatch, capsys, exc, line):
    monkeypatch.delenv("ARCHZOO_DEBUG", raising=False)
    _patch_verify(monkeypatch, exc)
    assert cli_main.main(["verify"]) == 2
    assert capsys.readouterr().err.splitlines() == [line]


@pytest.mark.parametrize("exc", [KeyError("a bug"), ValueError("a bug"), RuntimeError("a bug"), FileNotFoundError("x")])
def test_cli_lets_other_exceptions_through(monkeypatch, exc):
    _patch_verify(monkeypatch, exc)
    with pytest.raises(type(exc)):
        cli_main.main(["verify"])


def test_cli_user_errors_end_to_end(capsys, tmp_path):
    cases = [
        (["bench", "mobilenetv2_035", "--out", str(tmp_path / "r.txt")], "write .json or .csv"),
        (["export", str(tmp_path / "missing.safetensors"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")],
         "checkpoint not found"),
        (["export", "mobilenetv2_035", "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--img-size", "8"],
         "(min_size rule)"),
        (["reference", "check", str(tmp_path / "none.safetensors")], "reference file not found"),
    ]
    for argv, needle in cases:
        assert cli_main.main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"archzoo {argv[0]}: error: ") and needle in err[0], (argv, err)


# -- (d) one base class ------------------------------------------------------------------------------
def test_every_error_class_derives_from_archzoo_error():
    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, BaseException) and obj.__module__ == errors.__name__]
    assert {c.__name__ for c in classes} >= set(errors.__all__) - {"ArchzooError"}
    for c in classes:
        assert issubclass(c, ArchzooError), c


def test_old_import_paths_are_the_new_classes():
    from archzoo.checkpoint import CheckpointError as A
    from archzoo.cli.main import CLIError as B
    from archzoo.data.registry import DataError as C
    from archzoo.export import ExportError as D
    from archzoo.registry import UnknownModelError as E
    from archzoo.validation import InputError as F

    assert (A, B, C, D, E, F) == (errors.CheckpointError, errors.CLIError, errors.DataError, errors.ExportError,
                                  errors.UnknownModelError, errors.InputError)
    assert archzoo.InputError is errors.InputError and archzoo.CheckpointError is errors.CheckpointError


# -- (e) scans ---------------------------------------------------------------------------------------
_BLANKET = {"ValueError", "KeyError", "Exception", "BaseException", "OSError", "LookupError"}


def _caught_names(handler: ast.ExceptHandler) -> set[str]:
    if handler.type is None:
        return {"BaseException"}
    nodes = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else "" for n in nodes}


@pytest.mark.parametrize("path", sorted((ROOT / "cli").glob("*.py")), ids=lambda p: p.name)
def test_the_cli_has_no_blanket_catches(path):
    """The command line catches ArchzooError only: no `except ValueError/KeyError/Exception` that would
    turn a bug into a user error (user mistakes raise ArchzooError where they are detected)."""
    tree = ast.parse(path.read_text())
    bad = [f"{path.name}:{h.lineno}: except {sorted(_caught_names(h) & _BLANKET)}"
           for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler) and _caught_names(h) & _BLANKET]
    assert not bad, bad


# the modules behind the bench/compare/export/reference/verify commands, and the data specs
_USER_FACING = ["bench.py", "compare.py", "export.py", "deploy.py", "reference.py", "registry.py", "checkpoint.py",
                "validation.py", "engine/modeling.py", "data/registry.py", "data/folder.py", "data/digits.py",
                "data/synthetic.py", "cli/main.py", "cli/bench_cmd.py", "cli/compare_cmd.py", "cli/export_cmd.py",
                "cli/reference_cmd.py", "cli/verify_cmd.py"]


@pytest.mark.parametrize("rel", _USER_FACING)
def test_user_facing_code_raises_archzoo_errors(rel):
    """No `raise ValueError/KeyError/TypeError/FileNotFoundError(...)` in code that checks what the
    user gave: those raise an ArchzooError subclass naming the problem."""
    path = ROOT / rel
    tree = ast.parse(path.read_text())
    builtin = {"ValueError", "KeyError", "TypeError", "FileNotFoundError", "PermissionError"}
    bad = [f"{rel}:{n.lineno}" for n in ast.walk(tree)
           if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and isinstance(n.exc.func, ast.Name)
           and n.exc.func.id in builtin]
    assert not bad, bad
