"""Building the model of a run, and checking before any file is written that it fits the data."""
from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from archzoo.checkpoint import apply_checkpoint_filter, load_state_dict_strict, read_state_dict
from archzoo.errors import ArchzooError, CheckpointMismatchError, ConfigError, InputError
from archzoo.registry import check_model_name, create_model
from archzoo.validation import get_input_rules

__all__ = ["resolve_model_kwargs", "build_model", "load_init_checkpoint", "zero_classifier"]


def _one_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def _build_on_meta(name: str, kwargs: dict[str, Any]) -> nn.Module:
    """``create_model(name, **kwargs)`` on the meta device (no memory). A TypeError about the
    arguments (an option the model does not take) is the user's: :class:`ConfigError`."""
    try:
        with torch.device("meta"):
            return create_model(name, **kwargs)
    except TypeError as e:
        if "argument" not in str(e):  # not about the call's arguments: a bug, keep its traceback
            raise
        raise ConfigError(f"model {name} cannot be built with {_kwargs_text(kwargs)}: {_one_line(e)}") from None
    except ValueError as e:
        if isinstance(e, ArchzooError):
            raise
        # the families' constructors refuse option values they cannot build with a ValueError
        raise ConfigError(f"model {name} cannot be built with {_kwargs_text(kwargs)}: {_one_line(e)}") from None


def _kwargs_text(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no options"


def _takes_img_size(model: nn.Module) -> bool:
    try:
        params = inspect.signature(type(model).__init__).parameters
    except (TypeError, ValueError):
        return False
    return "img_size" in params


def resolve_model_kwargs(name: str, num_classes: int, in_chans: int, img_size: int,
                         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``create_model`` kwargs under which ``name`` takes ``in_chans x img_size x img_size``.

    The model is built on the meta device (no memory, no compute) and its :class:`InputRules` are
    read. A model with a fixed input size (ViT-like position embeddings) that takes ``img_size=`` is
    rebuilt for this size; any other broken rule is an :class:`InputError` naming the model, the size
    and the rule. A forward on the meta device then confirms it; an error there is a bug and propagates.
    """
    check_model_name(name)
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans, **(extra or {})}
    shape = (2, in_chans, img_size, img_size)
    what = f"model {name} cannot take {in_chans}x{img_size}x{img_size} inputs"
    model = _build_on_meta(name, kwargs)
    rules = get_input_rules(model)
    broken = rules.violation(shape)
    built_for_another = rules.fixed_size is not None and tuple(rules.fixed_size) != (img_size, img_size)
    if broken is not None and built_for_another and "img_size" not in kwargs and _takes_img_size(model):
        retry = {**kwargs, "img_size": img_size}
        try:
            model = _build_on_meta(name, retry)
        except ConfigError as e:  # the constructor refuses this size (token grid, windows, ...)
            raise InputError(f"{what} ({broken[0]} rule): {broken[1]}; and {_one_line(e)}") from None
        kwargs, again = retry, get_input_rules(model).violation(shape)
        if again is not None:
            raise InputError(f"{what}, even built with img_size={img_size} ({again[0]} rule): {again[1]}")
        broken = None
    if broken is not None:
        raise InputError(f"{what} ({broken[0]} rule): {broken[1]}")
    model.eval()
    with torch.no_grad():
        model(torch.empty(*shape, device="meta"))
    return kwargs


def build_model(name: str, kwargs: dict[str, Any]) -> nn.Module:
    return create_model(name, **kwargs)


def load_init_checkpoint(model: nn.Module, path: str, name: str) -> list[str]:
    """Initialise ``model`` from a checkpoint (archzoo's, timm's or the authors', through the family's
    converter). A classifier whose shape differs (another number of classes) is left at its fresh
    initialisation; every other tensor must fit. Returns the keys left out."""
    sd = read_state_dict(path)
    own = model.state_dict()
    if set(sd) != set(own):
        sd = apply_checkpoint_filter(sd, model)
    skipped: list[str] = []
    get_clf = getattr(model, "get_classifier", None)
    head = get_clf() if callable(get_clf) else None
    if isinstance(head, nn.Module):
        prefixes = [n + "." for n, mod in model.named_modules() if mod is head and n]
        head_keys = {k for k in own if any(k.startswith(pre) for pre in prefixes)}
        for k in head_keys:
            if k in sd and tuple(sd[k].shape) != tuple(own[k].shape):
                skipped.append(k)
                sd[k] = own[k]
    try:
        load_state_dict_strict(model, sd, what=f"checkpoint {path}")
    except CheckpointMismatchError as e:  # readable, but not this model's tensors
        raise CheckpointMismatchError(f"{_one_line(e)} (is it a checkpoint of another model than {name}?)") from None
    return skipped


def zero_classifier(model: nn.Module, only: list[str] | None = None) -> list[str]:
    """Zero the classifier's last Linear/1x1-conv layer (all of it, or only the keys in ``only``).
    Returns the parameter names zeroed ([] if the model has no recognisable classifier)."""
    get_clf = getattr(model, "get_classifier", None)
    head = get_clf() if callable(get_clf) else None
    if not isinstance(head, nn.Module):
        return []
    layers = [m for m in head.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    if not layers:
        return []
    last = layers[-1]
    names = {id(p): n for n, p in model.named_parameters()}
    done = []
    with torch.no_grad():
        for p in last.parameters(recurse=False):
            n = names.get(id(p))
            if n is not None and (only is None or n in only):
                p.zero_()
                done.append(n)
    return done
