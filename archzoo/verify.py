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
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from archzoo.papers import PaperCard, Variant, load_cards

__all__ = ["count_params", "count_flops", "count_variant", "Check", "VariantReport", "verify_variant", "verify",
           "matches_reported", "cache_path", "code_fingerprint"]


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
    explained: bool = False  # the card's deviation for this figure explains the mismatch
    figure: str = ""         # params | reference_params | flops: the key of the card's `deviations`

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


def count_variant(variant: Variant, flops: bool = True) -> tuple[int, int | None]:
    """(parameters, FLOPs or None) of a variant, built on the meta device, by its card's counter."""
    model = build_on_meta(variant.model, **variant.model_kwargs)
    params = count_params(model)
    n_flops = None
    if flops and variant.flops_g is not None:
        in_chans = variant.model_kwargs.get("in_chans", 3)
        if variant.flops_counter == "tf-profiler":
            from archzoo.tf_flops import count_tf_profiler_flops
            n_flops = int(count_tf_profiler_flops(model, variant.img_size, in_chans, variant.flops_batch))
        else:
            n_flops = count_flops(model, variant.img_size, in_chans, variant.flops_exclude)
    return params, n_flops


def verify_variant(card: PaperCard, variant: Variant, flops: bool = True,
                   counts: tuple[int, int | None] | None = None) -> VariantReport:
    """Compare a variant's counts (``counts``, or counted now) with its card."""
    rep = VariantReport(card, variant)
    try:
        rep.params, rep.flops = counts if counts is not None else count_variant(variant, flops)
    except Exception as e:  # report, don't crash the whole table
        rep.error = f"{type(e).__name__}: {e}"
        return rep
    # a deviation explains only the figure it is written for (deviations = { params = "..." })
    if variant.reference_params is not None:
        rep.checks.append(Check("params (exact)", rep.params, variant.reference_params, "authors' code",
                                rep.params == variant.reference_params, bool(variant.deviation("reference_params")),
                                "reference_params"))
    if variant.params_m is not None:
        ours_m = rep.params / 1e6
        rep.checks.append(Check("params (M)", ours_m, variant.params_m, variant.params_source,
                                matches_reported(ours_m, variant.params_m, 0.01), bool(variant.deviation("params")),
                                "params"))
    if variant.flops_g is not None and rep.flops is not None:
        ours_g = rep.flops / 1e9 / (2 if variant.flops_kind == "MACs" else 1)
        rep.checks.append(Check(f"{variant.flops_kind} (G)", ours_g, variant.flops_g, variant.flops_source,
                                matches_reported(ours_g, variant.flops_g, variant.flops_tolerance),
                                bool(variant.deviation("flops")), "flops"))
    return rep


# -- a cache of counts ----------------------------------------------------------------------------
# Counting on the meta device costs 0.3-3 s per variant (Python meta kernels), 2-3 minutes for the
# collection on 2 cores. The counts depend only on the code, so they are cached under a fingerprint of
# archzoo's source and the torch/timm versions: any change to either recounts everything.

def cache_path() -> Path:
    """``$ARCHZOO_CACHE_DIR/verify-counts.json`` (default ``$XDG_CACHE_HOME/archzoo`` or ``~/.cache/archzoo``)."""
    root = os.environ.get("ARCHZOO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "archzoo")
    return Path(root) / "verify-counts.json"


def code_fingerprint() -> str:
    import timm

    h = hashlib.sha256(f"torch {torch.__version__} timm {timm.__version__}".encode())
    root = Path(__file__).resolve().parent
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _count_key(variant: Variant, flops: bool) -> str:
    return json.dumps([variant.model, variant.model_kwargs, variant.img_size, variant.flops_counter,
                       variant.flops_batch, list(variant.flops_exclude), flops and variant.flops_g is not None],
                      sort_keys=True, default=str)


def _load_cache(fingerprint: str) -> dict[str, list]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("fingerprint") != fingerprint or not isinstance(data.get("counts"), dict):
        return {}
    return data["counts"]


def _save_cache(fingerprint: str, counts: dict[str, list]) -> None:
    from archzoo.io import write_json

    try:
        write_json(cache_path(), {"fingerprint": fingerprint, "counts": counts})
    except OSError:
        pass  # a read-only home is not an error: the next run counts again


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
           jobs: int | None = None, cache: bool = True) -> list[VariantReport]:
    """Verify every implemented variant with reported numbers whose model matches ``patterns``,
    in ``jobs`` worker processes (default: one per CPU core, at most 4). With ``cache``, counts made
    by the same code (see ``code_fingerprint``) are read from ``cache_path()`` instead of recounted."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor
    from contextlib import nullcontext

    from rich.progress import Progress

    selected = select_variants(patterns)
    fingerprint = code_fingerprint() if cache else ""
    cached = _load_cache(fingerprint) if cache else {}
    done: dict[int, VariantReport] = {}
    for i, (c, v) in enumerate(selected):
        hit = cached.get(_count_key(v, flops))
        if hit is not None:
            done[i] = verify_variant(c, v, flops, counts=(int(hit[0]), None if hit[1] is None else int(hit[1])))
    todo = [i for i in range(len(selected)) if i not in done]
    jobs = jobs if jobs is not None else min(4, os.cpu_count() or 1, max(1, len(todo)))
    work = [(selected[i][0].slug, selected[i][0].variants.index(selected[i][1]), flops) for i in todo]
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
    for i, rep in zip(todo, reports):
        done[i] = rep
        if cache and not rep.error:
            cached[_count_key(rep.variant, flops)] = [rep.params, rep.flops]
    if cache and todo:
        _save_cache(fingerprint, cached)
    return [done[i] for i in range(len(selected))]


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
        for c in r.checks:
            if not c.ok and c.explained:
                console.print(f"[yellow]{r.variant.name}[/] {c.what}: {r.variant.deviation(c.figure)}")
    bad = [r for r in reports if not r.ok]
    console.print(f"{len(reports)} variants checked, {len(reports) - len(bad)} pass, {len(bad)} fail")
