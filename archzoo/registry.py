"""archzoo's view of timm's registry: create models by paper variant name, list the collection."""
from __future__ import annotations

import difflib
import fnmatch
from typing import Any

import timm
from timm.models import _registry as timm_registry
from torch import nn

from archzoo.errors import ConfigError, UnknownModelError  # UnknownModelError re-exported
from archzoo.papers import find_card, load_cards
from archzoo.validation import attach_input_checks

__all__ = ["create_model", "list_models", "is_archzoo_model", "UnknownModelError", "model_names"]


def is_archzoo_model(name: str) -> bool:
    fn = timm_registry._model_entrypoints.get(name)
    return fn is not None and getattr(fn, "__module__", "").startswith("archzoo.")


def model_names() -> list[str]:
    """archzoo's own models and the timm models named by a paper card."""
    import archzoo.models  # noqa: F401

    own = {n for n in timm_registry._model_entrypoints if is_archzoo_model(n)}
    carded = {v.model for c in load_cards() for v in c.variants if v.provider == "timm"}
    return sorted(own | {n for n in carded if n in timm_registry._model_entrypoints})


def list_models(pattern: str = "*", paper: str | int | None = None) -> list[str]:
    """Models of the collection matching an fnmatch ``pattern``, optionally of one ``paper``
    (number, 'P22', slug or arXiv id)."""
    names = model_names()
    if paper is not None:
        card = find_card(paper)
        names = sorted({v.model for v in card.variants if v.implemented} & set(names))
    return [n for n in names if fnmatch.fnmatch(n, pattern)]


def _suggest(name: str) -> str:
    pool = model_names() or list(timm_registry._model_entrypoints)
    close = difflib.get_close_matches(name, pool, n=5, cutoff=0.5)
    if not close:
        close = difflib.get_close_matches(name, list(timm_registry._model_entrypoints), n=5, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else " See `archzoo list`."


def check_model_name(name: str) -> None:
    import archzoo.models  # noqa: F401

    if not timm.is_model(name):
        raise UnknownModelError(f"unknown model {name!r}.{_suggest(name)}")


def create_model(name: str, pretrained: bool = False, checkpoint_path: str | None = None, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` for the collection, with clear errors and input checks.

    ``checkpoint_path`` loads a local file (archzoo's, timm's or the authors', through the family's
    ``checkpoint_filter_fn``); ``pretrained=True`` uses the model's pretrained_cfg (timm's hub).
    """
    check_model_name(name)
    in_chans = kwargs.get("in_chans")
    if in_chans is not None and (not isinstance(in_chans, int) or isinstance(in_chans, bool) or in_chans < 1):
        raise ConfigError(f"in_chans must be a positive integer, got {in_chans!r}")
    num_classes = kwargs.get("num_classes")
    if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0):
        raise ConfigError(f"num_classes must be a non-negative integer, got {num_classes!r}")
    model = timm.create_model(name, pretrained=pretrained, **kwargs)
    if checkpoint_path is not None:
        from archzoo.checkpoint import load_checkpoint

        load_checkpoint(model, checkpoint_path)
    attach_input_checks(model, name, in_chans=in_chans)
    return model
