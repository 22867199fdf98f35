"""Clear errors for inputs a model cannot take (wrong channel count, too small, wrong rank).

A forward pre-hook checks the input before any layer runs. Families with stricter rules (a fixed
input size, a size divisible by a window) define ``check_input(x)`` on the model, which is called too.
"""
from __future__ import annotations

import types
from typing import Any

import torch
from torch import nn

__all__ = ["InputError", "attach_input_checks", "min_input_size"]


class InputError(ValueError):
    """The input does not fit the model."""


def min_input_size(model: nn.Module) -> int:
    """Smallest spatial side the model takes: ``model.min_input_size`` or its total stride."""
    explicit = getattr(model, "min_input_size", None)
    if explicit is not None:
        return int(explicit)
    info = getattr(model, "feature_info", None)
    try:
        return int(max(f["reduction"] for f in info)) if info else 1
    except (TypeError, KeyError):
        return 1


def _in_chans(model: nn.Module) -> int | None:
    # The first convolution in registration order is the stem in every timm-style model.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


def _hook(name: str, in_chans: int | None, min_size: int):
    def check(module: nn.Module, args: tuple[Any, ...]) -> None:
        if not args or not isinstance(args[0], torch.Tensor):
            return
        x = args[0]
        if x.dim() != 4:
            raise InputError(f"{name} expects a 4-D image batch (N, C, H, W), got shape {tuple(x.shape)}")
        if in_chans is not None and x.shape[1] != in_chans:
            raise InputError(
                f"{name} expects {in_chans} input channel(s), got {x.shape[1]} (input shape {tuple(x.shape)}); "
                f"create it with in_chans={x.shape[1]} to change that"
            )
        h, w = x.shape[-2:]
        if h < min_size or w < min_size:
            raise InputError(
                f"input {h}x{w} is too small for {name}: it needs at least {min_size}x{min_size} "
                f"(its total stride)"
            )
        custom = getattr(module, "check_input", None)
        if callable(custom):
            custom(x)

    return check


def _guarded_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    # Shape failures deep inside a model (timm's _assert, a reshape that does not fit) become one
    # error naming the model, the input and the size it was built for.
    try:
        return type(self).forward(self, *args, **kwargs)
    except (AssertionError, RuntimeError) as e:
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if x is None or isinstance(e, InputError):
            raise
        cfg = getattr(self, "pretrained_cfg", None) or {}
        size = cfg.get("input_size")
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(
            f"{self.__dict__.get('_archzoo_name', type(self).__name__)} cannot take an input of shape "
            f"{tuple(x.shape)} ({detail})" + (f"; it was configured for {tuple(size)}" if size else "")
        ) from e


def attach_input_checks(model: nn.Module, name: str | None = None, in_chans: int | None = None) -> nn.Module:
    """Register the input-check pre-hook once on ``model`` (idempotent)."""
    if getattr(model, "_archzoo_input_checked", False):
        return model
    name = name or (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
    if in_chans is None:
        in_chans = getattr(model, "in_chans", None) or _in_chans(model)
    model.register_forward_pre_hook(_hook(name, in_chans, min_input_size(model)))
    model.__dict__["_archzoo_name"] = name
    model.forward = types.MethodType(_guarded_forward, model)
    model._archzoo_input_checked = True
    return model
