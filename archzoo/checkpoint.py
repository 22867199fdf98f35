"""Loading and saving weights safely: safetensors, or ``torch.load(weights_only=True)``; never pickles.

The authors' checkpoints go through the model family's ``checkpoint_filter_fn`` (defined in the
family's module, as in timm), which maps their key names and layouts onto archzoo's.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from archzoo.errors import CheckpointError, CheckpointMismatchError  # re-exported: its home is archzoo.errors
from archzoo.io import atomic_write, save_safetensors  # re-exported: their home is archzoo.io

__all__ = [
    "CheckpointError",
    "read_state_dict",
    "unwrap_state_dict",
    "apply_checkpoint_filter",
    "load_state_dict_strict",
    "load_checkpoint",
    "atomic_write",
    "save_safetensors",
]

_WRAPPER_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model", "module", "params")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint's tensors. Accepts safetensors and torch zip/pickle files (weights only)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder, not a weights file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises several types for an unreadable or corrupt file
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointError(f"{path} is not a valid safetensors file ({first})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {_torch_load_problem(e)}") from None
    return _unwrap(obj, path)


def _torch_load_problem(e: BaseException) -> str:
    """What is wrong with a file ``torch.load(weights_only=True)`` refused, in archzoo's words (torch's
    own message advises ``weights_only=False``, which archzoo never does: it would run the file's code)."""
    text = str(e)
    import re

    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    if found:
        return (f"it holds a Python object ({found.group(1)}) besides tensors, which archzoo does not unpickle; "
                "save the state dict alone (or as safetensors)")
    if "Weights only load failed" in text or isinstance(e, (EOFError, RuntimeError, ValueError)) or "pickle" in text.lower():
        return "it is not a PyTorch checkpoint (truncated, corrupt or another format): archzoo reads safetensors and torch.save files"
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return first


def unwrap_state_dict(obj: dict, *, wrapper_keys: Sequence[str] = _WRAPPER_KEYS) -> dict[str, torch.Tensor]:
    """The tensors of a (possibly wrapped) state dict, with a DataParallel ``module.`` prefix stripped.

    Training checkpoints nest the weights under a wrapper key (``{"model": {...}, "epoch": ...}``);
    the first of ``wrapper_keys`` that holds a dict is followed, recursively. Families whose authors
    ship checkpoints with several (``model`` and ``model_ema``) pass their own preference order.
    A plain state dict comes back with only its tensor entries, stripped (no error: callers decide).
    """
    for k in wrapper_keys:
        if k in obj and isinstance(obj[k], dict):
            return unwrap_state_dict(obj[k], wrapper_keys=wrapper_keys)
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    tensors = unwrap_state_dict(obj) if isinstance(obj, dict) else {}
    if not tensors:
        raise CheckpointError(f"{path} holds no state dict (no tensors found)")
    return tensors


def _filter_fn_for(model: nn.Module) -> Callable | None:
    mod = sys.modules.get(type(model).__module__)
    return getattr(mod, "checkpoint_filter_fn", None)


def apply_checkpoint_filter(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Map an authors' state dict onto ``model`` with its family's ``checkpoint_filter_fn`` (if any)."""
    fn = _filter_fn_for(model)
    if fn is None:
        return state_dict
    try:
        return fn(state_dict, model)
    except KeyError as e:  # the converter looked up a key this checkpoint does not have
        key = e.args[0] if e.args else "?"
        raise CheckpointMismatchError(
            f"the checkpoint has no {key!r}, which the {type(model).__name__} checkpoint converter needs "
            "(is it a checkpoint of another model?)"
        ) from e


def load_state_dict_strict(model: nn.Module, state_dict: dict[str, torch.Tensor], what: str = "checkpoint") -> None:
    """Strict load with one clear error listing missing, unexpected and mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k}: {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        name = getattr(getattr(model, "pretrained_cfg", None) or {}, "get", lambda *_: None)("architecture")
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{len(items)} {label}: {', '.join(items[:5])}{more}")
        raise CheckpointMismatchError(
            f"{what} does not fit model {name or type(model).__name__}: " + "; ".join(parts)
        )
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint(model: nn.Module, path: str | Path, *, filter_authors: bool = True) -> nn.Module:
    """Load a checkpoint file (archzoo's, timm's or the authors') into ``model`` strictly."""
    sd = read_state_dict(path)
    own = model.state_dict()
    if filter_authors and set(sd) != set(own):
        sd = apply_checkpoint_filter(sd, model)
    load_state_dict_strict(model, sd, what=f"checkpoint {path}")
    return model
