"""``archzoo verify``: compare every registered variant with its paper card.

Models are built on ``torch.device("meta")`` (no memory, no compute), parameters are counted and
FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` at the card's resolution.
FlopCounterMode counts a multiply-add as 2 FLOPs and counts only matrix products and convolutions
(like fvcore, it skips element-wise ops, norms and softmax), so MACs = FLOPs / 2. Cards of papers
whose authors counted with TensorFlow's profiler set ``flops_counter = "tf-profiler"``
(``archzoo.tf_flops``), which also charges element-wise ops as TF does.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field
from typing import Iterable

import torch
from torch import nn

from archzoo.papers import PaperCard, Variant, load_cards

__all__ = ["count_params", "count_flops", "Check", "VariantReport", "verify_variant", "verify", "matches_reported"]


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _descendant_free(names: Iterable[str]) -> list[str]:
    names = sorted(set(names))
    return [n for n in names if not any(n != o and n.startswith(o + ".") for o in names)]


def count_flops(model: nn.Module, img_size: int | tuple[int, int], in_chans: int = 3, exclude: Iterable[str] = (),
                device: str | torch.device = "meta", inputs: torch.Tensor | None = None) -> int:
    """FLOPs (2 x MACs) of one forward at batch 1; ``exclude`` drops modules matching fnmatch
    patterns over their dotted names (e.g. parts a paper did not count)."""
    from torch.utils.flop_counter import FlopCounterMode

    hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    x = inputs if inputs is not None else torch.empty(1, in_chans, *hw, device=device)
    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False, depth=None) as mode:
        model(x)
    counts = mode.get_flop_counts()
    total = sum(counts.get("Global", {}).values())
    exclude = list(exclude)
    if exclude:
        root = type(model).__name__
        names = {k[len(root) + 1:] for k in counts if k.startswith(root + ".")}
        hit = _descendant_free(n for n in names if any(fnmatch.fnmatch(n, p) for p in exclude))
        total -= sum(sum(counts[f"{root}.{n}"].values()) for n in hit)
    return int(total)


def _decimals(x: float | int) -> int:
    if isinstance(x, int):
        return 0
    s = repr(float(x))
    return len(s.split(".")[1]) if "." in s and "e" not in s else 0


def matches_reported(ours: float, reported: float, tolerance: float) -> bool:
    """A reported figure matches when ours rounds to it at the printed precision, or lies within
    ``tolerance`` (relative)."""
    d = _decimals(reported)
    if round(ours, d) == round(float(reported), d):
        return True
    return abs(ours - reported) <= tolerance * abs(reported)


@dataclass
class Check:
    what: str  # params | params (exact) | MACs | FLOPs
    ours: float
    paper: float
    source: str
    ok: bool
    explained: bool = False

    @property
    def delta(self) -> float:
        return (self.ours - self.paper) / self.paper if self.paper else math.nan

    @property
    def verdict(self) -> str:
        if self.ok:
            return "ok"
        return "explained" if self.explained else "MISMATCH"


@dataclass
class VariantReport:
    card: PaperCard
    variant: Variant
    params: int | None = None
    flops: int | None = None
    checks: list[Check] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and all(c.ok or c.explained for c in self.checks)


class _SkipMetaInit(torch.overrides.TorchFunctionMode):
    """Skip in-place ops (weight initialisation: normal_, uniform_, trunc_normal_'s erfinv_, ...) on meta
    tensors while a model is built: they have no values to set, and their Python meta kernels make up
    most of the time of building a large model on the meta device."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if (name.endswith("_") and not name.startswith("_") and args and isinstance(args[0], torch.Tensor)
                and args[0].is_meta and name not in ("requires_grad_", "share_memory_", "resize_", "set_")):
            return args[0]
        return func(*args, **(kwargs or {}))


def build_on_meta(name: str, **kwargs) -> nn.Module:
    """Build a registered model on the meta device, without spending time on weight initialisation."""
    import timm

    import archzoo.models  # noqa: F401

    with torch.device("meta"), _SkipMetaInit():
        return timm.create_model(name, pretrained=False, **kwargs)


def verify_variant(card: PaperCard, variant: Variant, flops: bool = True) -> VariantReport:
    rep = VariantReport(card, variant)
    try:
        model = build_on_meta(variant.model, **variant.model_kwargs)
        rep.params = count_params(model)
        if flops and variant.flops_g is not None:
            in_chans = variant.model_kwargs.get("in_chans", 3)
            if variant.flops_counter == "tf-profiler":
                from archzoo.tf_flops import count_tf_profiler_flops
                rep.flops = count_tf_profiler_flops(model, variant.img_size, in_chans, variant.flops_batch)
            else:
                rep.flops = count_flops(model, variant.img_size, in_chans, variant.flops_exclude)
    except Exception as e:  # report, don't crash the whole table
        rep.error = f"{type(e).__name__}: {e}"
        return rep
    explained = bool(variant.deviation)
    if variant.reference_params is not None:
        rep.checks.append(Check("params (exact)", rep.params, variant.reference_params, "authors' code",
                                rep.params == variant.reference_params, explained))
    if variant.params_m is not None:
        ours_m = rep.params / 1e6
        rep.checks.append(Check("params (M)", ours_m, variant.params_m, variant.params_source,
                                matches_reported(ours_m, variant.params_m, 0.01), explained))
    if variant.flops_g is not None and rep.flops is not None:
        ours_g = rep.flops / 1e9 / (2 if variant.flops_kind == "MACs" else 1)
        rep.checks.append(Check(f"{variant.flops_kind} (G)", ours_g, variant.flops_g, variant.flops_source,
                                matches_reported(ours_g, variant.flops_g, variant.flops_tolerance), explained))
    return rep


def select_variants(patterns: Iterable[str] = ()) -> list[tuple[PaperCard, Variant]]:
    patterns = list(patterns) or ["*"]
    out = []
    for card in load_cards():
        for v in card.variants:
            if v.implemented and v.has_numbers and any(fnmatch.fnmatch(v.model, p) for p in patterns):
                out.append((card, v))
    return out


def _verify_one(args: tuple[str, int, bool]) -> VariantReport:
    slug, index, flops = args
    card = next(c for c in load_cards() if c.slug == slug)
    variant = card.variants[index]
    torch.set_num_threads(1)
    return verify_variant(card, variant, flops)


def verify(patterns: Iterable[str] = (), flops: bool = True, progress: bool = True,
           jobs: int | None = None) -> list[VariantReport]:
    """Verify every implemented variant with reported numbers whose model matches ``patterns``,
    in ``jobs`` worker processes (default: one per CPU core, at most 4)."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import nullcontext

    from rich.progress import Progress

    selected = select_variants(patterns)
    jobs = jobs if jobs is not None else min(4, os.cpu_count() or 1, max(1, len(selected)))
    work = [(c.slug, c.variants.index(v), flops) for c, v in selected]
    bar = Progress(transient=True) if progress else nullcontext()
    reports: list[VariantReport] = []
    with bar:
        task = bar.add_task("verifying", total=len(work)) if progress else None
        if jobs <= 1:
            for w in work:
                reports.append(_verify_one(w))
                if progress:
                    bar.advance(task)
        else:
            # fork: the workers inherit the imported torch/timm/archzoo instead of importing them again
            with ProcessPoolExecutor(jobs, mp_context=mp.get_context("fork")) as pool:
                for rep in pool.map(_verify_one, work, chunksize=1):
                    reports.append(rep)
                    if progress:
                        bar.advance(task)
    return reports


def print_reports(reports: list[VariantReport], file=None) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    table = Table(title="archzoo verify: our counts vs the paper cards")
    for col in ("paper", "model", "check", "ours", "paper", "delta", "source", "verdict"):
        table.add_column(col)
    colour = {"ok": "green", "explained": "yellow", "MISMATCH": "red"}
    for r in reports:
        if r.error:
            table.add_row(r.card.pid, r.variant.name, "build", "-", "-", "-", "-", f"[red]ERROR {r.error}[/]")
            continue
        for c in r.checks:
            ours = f"{int(c.ours):,}" if c.what == "params (exact)" else f"{c.ours:.3f}"
            paper = f"{int(c.paper):,}" if c.what == "params (exact)" else f"{c.paper:g}"
            table.add_row(r.card.pid, r.variant.name, c.what, ours, paper, f"{c.delta:+.2%}", c.source,
                          f"[{colour[c.verdict]}]{c.verdict}[/]")
    console = Console(file=file or sys.stdout, width=220)
    console.print(table)
    for r in reports:
        if r.variant.deviation and any(not c.ok for c in r.checks):
            console.print(f"[yellow]{r.variant.name}[/]: {r.variant.deviation}")
    bad = [r for r in reports if not r.ok]
    console.print(f"{len(reports)} variants checked, {len(reports) - len(bad)} pass, {len(bad)} fail")
