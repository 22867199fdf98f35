"""Building the model of a run, and checking before any file is written that it fits the data."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from archzoo.checkpoint import CheckpointError, apply_checkpoint_filter, load_state_dict_strict, read_state_dict
from archzoo.registry import check_model_name, create_model
from archzoo.validation import InputError

__all__ = ["resolve_model_kwargs", "build_model", "load_init_checkpoint", "zero_classifier"]


def _one_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__


def _meta_forward(name: str, kwargs: dict[str, Any], in_chans: int, img_size: int) -> None:
    with torch.device("meta"):
        m = create_model(name, **kwargs)
    m.eval()
    with torch.no_grad():
        m(torch.empty(2, in_chans, img_size, img_size, device="meta"))


def resolve_model_kwargs(name: str, num_classes: int, in_chans: int, img_size: int,
                         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``create_model`` kwargs under which ``name`` takes ``in_chans x img_size x img_size``.

    Checked with a forward on the meta device (no memory, no compute). Models with a fixed input
    grid (ViT-like position embeddings) are retried with ``img_size=``; if neither works the error
    names the model, the size and the reason.
    """
    check_model_name(name)
    kwargs: dict[str, Any] = {"num_classes": num_classes, "in_chans": in_chans, **(extra or {})}
    try:
        _meta_forward(name, kwargs, in_chans, img_size)
        return kwargs
    except InputError as e:
        raise InputError(f"model {name} cannot take {in_chans}x{img_size}x{img_size} inputs: {_one_line(e)}") from None
    except TypeError as e:
        if "in_chans" in str(e) or "num_classes" in str(e):
            raise ValueError(f"model {name} cannot be built for this data: {_one_line(e)}") from None
        first: BaseException = e
    except Exception as e:  # shape errors inside the forward
        first = e
    if "img_size" not in kwargs:
        retry = {**kwargs, "img_size": img_size}
        try:
            _meta_forward(name, retry, in_chans, img_size)
            return retry
        except Exception:
            pass
    raise InputError(f"model {name} cannot take {in_chans}x{img_size}x{img_size} inputs: {_one_line(first)}")


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
    except CheckpointError as e:
        raise CheckpointError(f"{_one_line(e)} (is it a checkpoint of another model than {name}?)") from None
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
