"""What inputs a model takes, as data: :class:`InputRules`, checked once before the forward.

Every model made by :func:`archzoo.create_model` gets a forward pre-hook that checks the input against
the model's rules before any layer runs, and raises :class:`~archzoo.errors.InputError` (one line
naming the model, the rule and the input shape) when a rule is broken. Nothing is caught inside the
forward: an error raised by a layer (a dtype bug, an out-of-memory) keeps its type and traceback.

Where the rules come from, first match wins:

1. the model's own ``input_rules`` (an attribute or property returning :class:`InputRules`):
   families with a fixed input size (position embeddings without interpolation), attention windows
   or a stricter minimum declare them;
2. rules derived from the model: ``channels`` from ``in_chans`` or the first convolution,
   ``min_size`` from ``min_input_size`` or the total stride in ``feature_info``, ``fixed_size`` /
   ``multiple`` from a timm ``PatchEmbed`` (``strict_img_size`` / the patch size) or the
   ``pretrained_cfg``'s ``fixed_input_size``, ``multiple`` from timm's ``HaloAttn`` blocks, plus the
   rules of a few timm classes of the collection (:data:`TIMM_RULES`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
from torch import nn

from archzoo.errors import InputError

__all__ = [
    "InputError",
    "InputRules",
    "attach_input_checks",
    "check_input",
    "default_input_rules",
    "derive_input_rules",
    "get_input_rules",
    "min_input_size",
    "TIMM_RULES",
]


@dataclass(frozen=True)
class InputRules:
    """The inputs a model takes: an ``ndim``-D batch (N, C, H, W) where

    - ``channels``: C must equal it (None: any);
    - ``min_size``: H and W must be at least it (its total stride, or the smallest size its unpadded
      layers survive);
    - ``fixed_size``: (H, W) must equal it (position embeddings added without interpolation, ...);
    - ``multiple``: H and W must be multiples of it (a strict patch embedding, attention blocks);
    - ``windows``: ``(stride, wh, ww)`` triples: the feature map at that stride, ``ceil(H / stride) x
      ceil(W / stride)`` ('same' padding), must split into ``wh x ww`` attention windows.

    The ``*_reason`` strings say why, for the error message (and may add how to change the rule,
    e.g. "create it with img_size=...").
    """

    channels: int | None = None
    min_size: int = 1
    fixed_size: tuple[int, int] | None = None
    multiple: int | None = None
    windows: tuple[tuple[int, int, int], ...] = ()
    ndim: int = 4
    min_size_reason: str = "its total stride"
    fixed_size_reason: str = ""
    multiple_reason: str = ""

    def replace(self, **changes: Any) -> "InputRules":
        return replace(self, **changes)

    def violation(self, shape: tuple[int, ...] | torch.Size) -> tuple[str, str] | None:
        """``(rule, explanation)`` of the first rule ``shape`` breaks, or None when it fits.

        The batch dimension is never read: under torch.export / torch.compile it stays symbolic."""
        shape = tuple(shape)
        if len(shape) != self.ndim:
            return "ndim", f"it expects a {self.ndim}-D image batch (N, C, H, W)"
        if self.channels is not None and shape[1] != self.channels:
            return "channels", (f"it expects {self.channels} input channel(s), got {shape[1]}; "
                                f"create it with in_chans={shape[1]} to change that")
        h, w = shape[-2:]
        if h < self.min_size or w < self.min_size:
            return "min_size", (f"input {h}x{w} is too small, it needs at least {self.min_size}x{self.min_size}"
                                + (f" ({self.min_size_reason})" if self.min_size_reason else ""))
        if self.fixed_size is not None and (h, w) != tuple(self.fixed_size):
            fh, fw = self.fixed_size
            why = f" ({self.fixed_size_reason})" if self.fixed_size_reason else ""
            return "fixed_size", f"it takes only the input size it was built for, {fh}x{fw}{why}, got {h}x{w}"
        if self.multiple is not None and (h % self.multiple or w % self.multiple):
            why = f" ({self.multiple_reason})" if self.multiple_reason else ""
            return "multiple", f"input {h}x{w} is not a multiple of {self.multiple}x{self.multiple}{why}"
        for stride, wh, ww in self.windows:
            fh, fw = -(-h // stride), -(-w // stride)
            if fh % wh or fw % ww:
                return "windows", (f"input {h}x{w} gives a {fh}x{fw} map at stride {stride}, not divisible by its "
                                   f"attention window {wh}x{ww}; use a multiple of {stride * wh}x{stride * ww}")
        return None

    def fits(self, shape: tuple[int, ...] | torch.Size) -> bool:
        return self.violation(shape) is None

    def message(self, name: str, shape: tuple[int, ...] | torch.Size) -> str | None:
        """The one-line error for ``shape`` (None when it fits)."""
        v = self.violation(shape)
        if v is None:
            return None
        rule, why = v
        return f"{name} cannot take an input of shape {tuple(shape)} ({rule} rule): {why}"

    def check(self, x: torch.Tensor, name: str) -> None:
        """Raise :class:`InputError` when ``x`` breaks a rule."""
        msg = self.message(name, x.shape)
        if msg is not None:
            raise InputError(msg)


# -- deriving the rules of a model ------------------------------------------------------------------

def _first_conv_in_chans(model: nn.Module) -> int | None:
    # The first convolution in registration order is the stem in every timm-style model.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


def _max_reduction(model: nn.Module) -> int:
    info = getattr(model, "feature_info", None)
    try:
        return int(max(f["reduction"] for f in info)) if info else 1
    except (TypeError, KeyError, ValueError):  # feature_info of another shape (a FeatureInfo object, ...)
        red = getattr(info, "reduction", None)
        return int(max(red())) if callable(red) else 1


def _size2(v: Any) -> tuple[int, int] | None:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(s, int) for s in v):
        return (int(v[0]), int(v[1]))
    return None


def _patch_embed_rules(model: nn.Module) -> dict[str, Any] | None:
    """timm's PatchEmbed: a strict one takes only its img_size, a non-strict one multiples of its patch
    (unless it pads). None when the model has none."""
    from timm.layers import PatchEmbed

    pe = next((m for m in model.modules() if isinstance(m, PatchEmbed)), None)
    if pe is None:
        return None
    if getattr(pe, "strict_img_size", False) and _size2(getattr(pe, "img_size", None)):
        return {"fixed_size": _size2(pe.img_size),
                "fixed_size_reason": "its patch embedding is strict about the size (timm's strict_img_size); "
                                     "create it with img_size=... for another size"}
    if not getattr(pe, "dynamic_img_pad", False):
        p = _size2(tuple(pe.patch_size))
        if p and max(p) > 1:
            return {"multiple": math.lcm(*p), "multiple_reason": f"its {p[0]}x{p[1]} patches"}
    return {}


def _halo_multiple(model: nn.Module) -> int | None:
    """timm's HaloAttn needs its input map divisible by its block size: the input size must be a
    multiple of (the map's reduction x block size), for every HaloAttn not inside a block that pads its
    input to whole attention blocks (a module with ``pads_to_block_size = True``, e.g. archzoo's HaloNet)."""
    from timm.layers.halo_attn import HaloAttn

    padded = [n + "." for n, m in model.named_modules() if n and getattr(m, "pads_to_block_size", False)]
    halos = [(n, m) for n, m in model.named_modules()
             if isinstance(m, HaloAttn) and not any(n.startswith(p) for p in padded)]
    if not halos:
        return None
    info = getattr(model, "feature_info", None) or []
    stage_out: dict[int, int] = {}
    for f in info:
        parts = str(f.get("module", "")).split(".")
        if len(parts) == 2 and parts[0] == "stages" and parts[1].isdigit():
            stage_out[int(parts[1])] = int(f["reduction"])
    top = _max_reduction(model)
    multiple = 1
    for name, m in halos:
        parts = name.split(".")
        stage = int(parts[1]) if len(parts) > 1 and parts[0] == "stages" and parts[1].isdigit() else None
        out = stage_out.get(stage, top) if stage is not None else top  # the map it returns, at this reduction
        # a strided HaloAttn downsamples by its query stride, or by the average pool after it
        stride = 2 if isinstance(getattr(m, "pool", None), nn.AvgPool2d) else max(1, int(m.block_stride))
        multiple = math.lcm(multiple, max(1, out // stride) * m.block_size)
    return multiple


def default_input_rules(model: nn.Module, in_chans: int | None = None) -> InputRules:
    """The rules derived from a model's structure (not its own ``input_rules``)."""
    channels = in_chans if in_chans is not None else getattr(model, "in_chans", None)
    if not isinstance(channels, int):
        channels = _first_conv_in_chans(model)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    explicit = getattr(model, "min_input_size", None)
    if isinstance(explicit, int):
        min_size, min_reason = explicit, "the smallest size its layers take"
    else:
        min_size, min_reason = _max_reduction(model), "its total stride"
    cfg_min = cfg.get("min_input_size")
    if cfg_min and int(max(cfg_min[-2:])) > min_size:
        min_size, min_reason = int(max(cfg_min[-2:])), "its pretrained_cfg's min_input_size"
    fields: dict[str, Any] = {"channels": channels, "min_size": int(min_size), "min_size_reason": min_reason}
    patch = _patch_embed_rules(model)
    fields.update(patch or {})
    if patch is None and cfg.get("fixed_input_size"):  # no patch embedding to ask: timm's metadata
        size = _size2(getattr(model, "img_size", None)) or _size2(tuple(cfg.get("input_size", ()))[-2:])
        if size:
            fields["fixed_size"] = size
            fields["fixed_size_reason"] = "its pretrained_cfg says fixed_input_size"
    halo = _halo_multiple(model)
    if halo and halo > 1:
        fields["multiple"] = math.lcm(fields.get("multiple") or 1, halo)
        fields["multiple_reason"] = "its halo attention splits each feature map into whole blocks"
    return InputRules(**fields)


def _inception_rules(model: nn.Module, rules: InputRules) -> InputRules:
    return rules.replace(min_size=max(rules.min_size, 75),
                         min_size_reason="its unpadded (VALID) stem convolutions and poolings")


def _crossvit_rules(model: nn.Module, rules: InputRules) -> InputRules:
    # CrossViT resizes its input to each branch's img_size (scale_image): any size goes in.
    return rules.replace(min_size=1, fixed_size=None, fixed_size_reason="", multiple=None, multiple_reason="")


#: Rules of timm classes the collection uses that their structure does not tell, by class name.
TIMM_RULES: dict[str, Callable[[nn.Module, InputRules], InputRules]] = {
    "InceptionV4": _inception_rules,
    "InceptionResnetV2": _inception_rules,
    "CrossVit": _crossvit_rules,
}


def _declared_rules(model: nn.Module) -> InputRules | None:
    declared = getattr(model, "input_rules", None)
    if callable(declared) and not isinstance(declared, InputRules):
        declared = declared()
    return declared if isinstance(declared, InputRules) else None


def derive_input_rules(model: nn.Module, in_chans: int | None = None) -> InputRules:
    """The model's rules, freshly computed (its own ``input_rules`` first, else derived)."""
    declared = _declared_rules(model)
    if declared is not None:
        return declared
    rules = default_input_rules(model, in_chans)
    special = TIMM_RULES.get(type(model).__name__)
    return special(model, rules) if special is not None else rules


def get_input_rules(model: nn.Module) -> InputRules:
    """The rules the model's input check uses (computed when the check was attached), else derived now."""
    rules = model.__dict__.get("_archzoo_input_rules")
    return rules if isinstance(rules, InputRules) else derive_input_rules(model)


def _model_name(model: nn.Module) -> str:
    return (model.__dict__.get("_archzoo_name") or (getattr(model, "pretrained_cfg", None) or {}).get("architecture")
            or type(model).__name__)


def check_input(model: nn.Module, x: torch.Tensor, name: str | None = None) -> None:
    """Raise :class:`InputError` when ``x`` breaks one of ``model``'s rules. For families that check
    their input in their own forward too (so that a model built without archzoo's hook checks it).

    Skipped under ``torch.jit.trace`` (the legacy ONNX exporter): there shapes are traced tensors, the
    example input was checked when the model ran eagerly, and the comparison would be baked into the
    trace as a constant (with a TracerWarning)."""
    if torch.jit.is_tracing():
        return
    name = name or _model_name(model)
    msg = get_input_rules(model).message(name, x.shape)
    if msg is not None and "_archzoo_input_rules" in model.__dict__:
        # the rules were computed when the check was attached: re-derive them once before refusing, in
        # case the model was changed since (timm's set_input_size, ...)
        fresh = derive_input_rules(model, model.__dict__.get("_archzoo_in_chans"))
        model.__dict__["_archzoo_input_rules"] = fresh
        msg = fresh.message(name, x.shape)
    if msg is not None:
        raise InputError(msg)


def min_input_size(model: nn.Module) -> int:
    """Smallest spatial side the model takes (its rules' ``min_size``)."""
    return get_input_rules(model).min_size


def _hook(name: str):
    def check(module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            check_input(module, args[0], name)

    return check


def attach_input_checks(model: nn.Module, name: str | None = None, in_chans: int | None = None) -> nn.Module:
    """Compute ``model``'s :class:`InputRules` and register the pre-hook that checks them (idempotent)."""
    if getattr(model, "_archzoo_input_checked", False):
        return model
    name = name or _model_name(model)
    model.__dict__["_archzoo_name"] = name
    model.__dict__["_archzoo_in_chans"] = in_chans
    model.__dict__["_archzoo_input_rules"] = derive_input_rules(model, in_chans)
    model.register_forward_pre_hook(_hook(name))
    model._archzoo_input_checked = True
    return model
