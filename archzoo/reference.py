"""Reference vectors: prove that an archzoo family computes the authors' function.

A reference file (``shared/reference/<id>.safetensors``, format in its README) holds the authors'
state dict under their key names, ``__input__`` (or ``__input__.<name>``) and ``__output__`` (or
``__output__.<k>``), plus metadata naming the ``family`` and the authors' constructor ``config``.

Each family plugs in with :func:`register_reference`::

    @register_reference("hornet")
    def _hornet_reference(config: dict, meta: dict) -> nn.Module:
        return HorNet(depths=config["depths"], ...)      # the equivalent archzoo model

By default the authors' state dict goes through the model module's ``checkpoint_filter_fn`` and a
strict ``load_state_dict``, and ``model(__input__)`` is compared with ``__output__``. A family whose
files have several inputs or outputs passes ``forward=`` (returning ``{output_key: tensor}``) and/or
``load=``.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from archzoo.errors import ReferenceFileError

__all__ = [
    "register_reference",
    "ReferenceAdapter",
    "ReferenceFile",
    "ReferenceResult",
    "read_reference",
    "check_reference",
    "reference_dir",
    "tolerance_for",
]

BuildFn = Callable[[dict, dict], nn.Module]
LoadFn = Callable[[nn.Module, dict], None]
ForwardFn = Callable[[nn.Module, dict], dict]


@dataclass
class ReferenceAdapter:
    family: str
    build: BuildFn
    load: LoadFn | None = None
    forward: ForwardFn | None = None
    tolerance: float | None = None  # overrides the dtype default (e.g. the issue asks 1e-8)


_ADAPTERS: dict[str, ReferenceAdapter] = {}


def register_reference(
    family: str,
    *,
    load: LoadFn | None = None,
    forward: ForwardFn | None = None,
    tolerance: float | None = None,
) -> Callable[[BuildFn], BuildFn]:
    """Decorator: register ``build(config, meta) -> model`` for a reference family."""

    def deco(build: BuildFn) -> BuildFn:
        _ADAPTERS[family] = ReferenceAdapter(family, build, load, forward, tolerance)
        return build

    return deco


def adapters() -> dict[str, ReferenceAdapter]:
    import archzoo.models  # noqa: F401  (families register on import)

    return dict(_ADAPTERS)


def reference_dir() -> Path | None:
    """``$ARCHZOO_REFERENCE_DIR``, else ``../shared/reference`` beside the checkout; None if absent."""
    env = os.environ.get("ARCHZOO_REFERENCE_DIR")
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve().parent.parent
    candidates += [here.parent / "shared" / "reference", Path.cwd().parent / "shared" / "reference"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


@dataclass
class ReferenceFile:
    path: Path
    meta: dict[str, str]
    state_dict: dict[str, torch.Tensor]
    inputs: dict[str, torch.Tensor]
    outputs: dict[str, torch.Tensor]

    @property
    def family(self) -> str:
        return self.meta.get("family", "")

    @property
    def config(self) -> dict[str, Any]:
        return json.loads(self.meta.get("config", "{}"))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.meta.get("dtype") == "float64" else torch.float32

    @property
    def input(self) -> torch.Tensor:
        """The single input (``__input__``); families with several use :attr:`inputs`."""
        return self.inputs[""]


def read_reference(path: str | Path) -> ReferenceFile:
    """Read a reference file safely (safetensors never executes code)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ReferenceFileError(f"reference file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises several types for corrupt headers
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReferenceFileError(f"{path} is not a readable safetensors file: {first}") from None
    try:
        json.loads(meta.get("config", "{}"))
    except json.JSONDecodeError as e:
        raise ReferenceFileError(f"{path}: its 'config' metadata is not JSON ({e})") from None
    sd, inputs, outputs = {}, {}, {}
    for k, t in tensors.items():
        if k == "__input__" or k.startswith("__input__."):
            inputs[k[len("__input__.") :] if "." in k else ""] = t
        elif k == "__output__" or k.startswith("__output__."):
            outputs[k] = t
        else:
            sd[k] = t
    return ReferenceFile(path, meta, sd, inputs, outputs)


def tolerance_for(ref: ReferenceFile, adapter: ReferenceAdapter | None = None) -> float:
    if adapter is not None and adapter.tolerance is not None:
        return adapter.tolerance
    return 1e-9 if ref.dtype == torch.float64 else 1e-4


@dataclass
class ReferenceResult:
    path: Path
    family: str
    status: str  # pass | FAIL | no implementation | error
    max_abs: float = float("nan")
    rel: float = float("nan")
    tolerance: float = float("nan")
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "pass"


def default_load(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Authors' state dict -> model, through the model module's ``checkpoint_filter_fn``, strictly."""
    from archzoo.checkpoint import apply_checkpoint_filter, load_state_dict_strict

    load_state_dict_strict(model, apply_checkpoint_filter(state_dict, model))


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    """(max abs error, relative error on the whole output = ||out - ref|| / ||ref||)."""
    out, ref = out.detach().to(torch.float64), ref.to(torch.float64)
    diff = out - ref
    max_abs = diff.abs().max().item() if diff.numel() else 0.0
    denom = ref.norm().item()
    rel = diff.norm().item() / denom if denom > 0 else diff.norm().item()
    return max_abs, rel


def check_reference(path: str | Path) -> ReferenceResult:
    """Build the family's model, load the authors' weights, run the input, compare outputs."""
    ref = read_reference(path)
    adapter = adapters().get(ref.family)
    if adapter is None:
        return ReferenceResult(ref.path, ref.family, "no implementation", detail="no archzoo implementation of this family yet")
    tol = tolerance_for(ref, adapter)
    try:
        model = adapter.build(ref.config, ref.meta)
        model = model.to(ref.dtype).eval()
        sd = {k: (v.to(ref.dtype) if v.is_floating_point() else v) for k, v in ref.state_dict.items()}
        (adapter.load or default_load)(model, sd)
        inputs = {k: (v.to(ref.dtype) if v.is_floating_point() else v) for k, v in ref.inputs.items()}
        with torch.no_grad():
            if adapter.forward is not None:
                outs = adapter.forward(model, inputs)
            else:
                outs = {"__output__": model(inputs[""])}
    except Exception as e:
        return ReferenceResult(ref.path, ref.family, "error", tolerance=tol, detail=f"{type(e).__name__}: {e}")
    worst_abs, worst_rel, detail = 0.0, 0.0, []
    for key, expected in ref.outputs.items():
        if key not in outs:
            return ReferenceResult(ref.path, ref.family, "error", tolerance=tol, detail=f"implementation produced no {key}")
        got = outs[key]
        if tuple(got.shape) != tuple(expected.shape):
            return ReferenceResult(
                ref.path, ref.family, "FAIL", tolerance=tol,
                detail=f"{key}: shape {tuple(got.shape)} != reference {tuple(expected.shape)}",
            )
        a, r = relative_error(got, expected)
        if r > tol:
            detail.append(f"{key}: rel {r:.2e}")
        worst_abs, worst_rel = max(worst_abs, a), max(worst_rel, r)
    status = "pass" if worst_rel <= tol else "FAIL"
    return ReferenceResult(ref.path, ref.family, status, worst_abs, worst_rel, tol, "; ".join(detail))


def print_results(results: list[ReferenceResult], file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Reference vectors (authors' code vs archzoo)")
    for col in ("file", "family", "max abs err", "rel err", "tolerance", "result"):
        table.add_column(col)
    style = {"pass": "green", "FAIL": "red", "error": "red", "no implementation": "yellow"}
    for r in results:
        fmt = lambda x: "-" if x != x else f"{x:.2e}"  # noqa: E731  (NaN -> '-')
        table.add_row(
            r.path.name, r.family, fmt(r.max_abs), fmt(r.rel), fmt(r.tolerance),
            f"[{style[r.status]}]{r.status}[/]" + (f" ({r.detail})" if r.detail and r.status != "pass" else ""),
        )
    Console(file=file or sys.stdout, width=200).print(table)


def load_manifest(family: str, directory: Path | None = None) -> dict[str, dict[str, list[int]]]:
    """``manifests/<family>.json``: {variant: {authors' key: shape}} of the authors' full-size models."""
    return _read_json(directory, "manifests", family)


def load_counts(family: str, directory: Path | None = None) -> dict[str, dict[str, Any]]:
    """``counts/<family>.json``: exact parameter counts and fvcore GMACs of the authors' models."""
    return _read_json(directory, "counts", family)


def _read_json(directory: Path | None, kind: str, family: str) -> Any:
    root = directory or reference_dir()
    if root is None:
        raise ReferenceFileError("no reference directory (set ARCHZOO_REFERENCE_DIR)")
    p = Path(root) / kind / f"{family}.json"
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise ReferenceFileError(f"no {kind[:-1]} file for family {family!r}: {p} does not exist") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ReferenceFileError(f"cannot read {p}: {e}") from None


def manifest_problems(model: nn.Module, manifest: dict[str, list[int]]) -> list[str]:
    """Run the authors' full-size key/shape manifest through the model's checkpoint filter (on the
    meta device) and list every key or shape that differs from the model's own state dict."""
    from archzoo.checkpoint import apply_checkpoint_filter

    fake = {k: torch.empty(shape, device="meta") for k, shape in manifest.items()}
    mapped = apply_checkpoint_filter(fake, model)
    own = model.state_dict()
    problems = [f"missing after filter: {k}" for k in own if k not in mapped]
    problems += [f"unexpected after filter: {k}" for k in mapped if k not in own]
    problems += [
        f"shape {k}: filtered {tuple(mapped[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own if k in mapped and tuple(mapped[k].shape) != tuple(own[k].shape)
    ]
    return problems
