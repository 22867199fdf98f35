"""Paper cards: one TOML file per paper of the collection (data, not code).

A card records what the paper (or its authors' README) reports, with the source of every number, so
that ``archzoo verify`` can compare our implementation with it. Schema (see ``docs/cards.md``)::

    number = 22                       # position in shared/seed/papers.md (P1..P58)
    title = "HorNet: ..."
    arxiv = "2207.14284"
    repo = "raoyongming/HorNet"       # authors' repository (owner/name), "" when none
    kind = "backbone"                 # backbone | method | tool | task
    status = "implemented"            # not implemented | partial | implemented
    status_note = "what is missing"   # required unless implemented
    families = ["hornet"]             # reference-vector families this paper covers
    notes = "free text (deviations of the whole family, how numbers were sourced)"

    [[variants]]
    model = "hornet_tiny_7x7"         # registered model name (archzoo's or timm's)
    provider = "archzoo"              # archzoo | timm | none (not implemented yet)
    img_size = 224
    model_kwargs = {}                 # extra create_model kwargs (e.g. {num_classes = 21841})
    params_m = 22                     # reported, millions (printed precision matters)
    params_source = "authors' README"
    flops_g = 4.0                     # reported, giga
    flops_kind = "MACs"               # MACs | FLOPs (many papers print MACs as "FLOPs")
    flops_source = "authors' README"
    flops_tolerance = 0.05            # optional, relative; default 5 %
    flops_exclude = ["*.lepe"]        # optional: module-name patterns the paper did not count
    flops_counter = "torch"           # torch (FlopCounterMode) | tf-profiler (archzoo.tf_flops)
    flops_batch = 1                   # batch of the authors' count (tf-profiler: per-graph work / batch)
    top1 = 82.8
    top1_source = "Table 1"
    reference_params = 22409512       # exact count of the authors' code (shared/reference/counts)
    deviation = "..."                 # optional: a known, explained mismatch (verify reports it)
"""
from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["PaperCard", "Variant", "load_cards", "card_for_model", "find_card", "CardError"]

CARD_DIR = Path(__file__).parent
KINDS = ("backbone", "method", "tool", "task")
STATUSES = ("not implemented", "partial", "implemented")
PROVIDERS = ("archzoo", "timm", "none")
FLOP_KINDS = ("MACs", "FLOPs")
FLOP_COUNTERS = ("torch", "tf-profiler")


class CardError(ValueError):
    """A paper card is malformed."""


@dataclass(frozen=True)
class Variant:
    model: str
    provider: str = "archzoo"
    img_size: int = 224
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    params_m: float | None = None
    params_source: str = ""
    flops_g: float | None = None
    flops_kind: str = "MACs"
    flops_source: str = ""
    flops_tolerance: float = 0.05
    flops_exclude: tuple[str, ...] = ()
    flops_counter: str = "torch"
    flops_batch: int = 1
    top1: float | None = None
    top1_source: str = ""
    reference_params: int | None = None
    deviation: str = ""
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """Display name: the model name, or the label when one model appears in several forms."""
        return self.label or self.model

    @property
    def implemented(self) -> bool:
        return self.provider != "none"

    @property
    def has_numbers(self) -> bool:
        return any(v is not None for v in (self.params_m, self.flops_g, self.reference_params))


@dataclass(frozen=True)
class PaperCard:
    slug: str
    number: int
    title: str
    arxiv: str
    repo: str
    kind: str
    status: str
    status_note: str = ""
    families: tuple[str, ...] = ()
    notes: str = ""
    variants: tuple[Variant, ...] = ()
    path: Path | None = None

    @property
    def pid(self) -> str:
        return f"P{self.number}"

    @property
    def arxiv_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else ""

    @property
    def repo_url(self) -> str:
        return f"https://github.com/{self.repo}" if self.repo else ""

    def citation(self) -> str:
        """A short citation line (title, arXiv id)."""
        return f"{self.title}. arXiv:{self.arxiv}" if self.arxiv else self.title


_VARIANT_KEYS = {f for f in Variant.__dataclass_fields__ if f != "extra"}


def _parse_variant(raw: dict[str, Any], where: str) -> Variant:
    if "model" not in raw:
        raise CardError(f"{where}: a variant needs 'model'")
    known = {k: v for k, v in raw.items() if k in _VARIANT_KEYS}
    extra = {k: v for k, v in raw.items() if k not in _VARIANT_KEYS}
    if "flops_exclude" in known:
        known["flops_exclude"] = tuple(known["flops_exclude"])
    v = Variant(**known, extra=extra)
    if v.provider not in PROVIDERS:
        raise CardError(f"{where}: provider must be one of {PROVIDERS}, got {v.provider!r}")
    if v.flops_kind not in FLOP_KINDS:
        raise CardError(f"{where}: flops_kind must be one of {FLOP_KINDS}, got {v.flops_kind!r}")
    if v.flops_counter not in FLOP_COUNTERS:
        raise CardError(f"{where}: flops_counter must be one of {FLOP_COUNTERS}, got {v.flops_counter!r}")
    if v.flops_counter != "torch" and v.flops_exclude:
        raise CardError(f"{where}: flops_exclude works with the torch counter only")
    if not isinstance(v.flops_batch, int) or v.flops_batch < 1:
        raise CardError(f"{where}: flops_batch must be a positive integer, got {v.flops_batch!r}")
    for num, src in (("params_m", "params_source"), ("flops_g", "flops_source"), ("top1", "top1_source")):
        if getattr(v, num) is not None and not getattr(v, src):
            raise CardError(f"{where}: {num} is given without {src} (every reported number needs its source)")
    return v


def parse_card(text: str, slug: str, path: Path | None = None) -> PaperCard:
    """Parse one card's TOML text; raises CardError naming the problem."""
    where = str(path or slug)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"{where}: not valid TOML: {e}") from None
    for key in ("number", "title", "arxiv", "kind", "status"):
        if key not in raw:
            raise CardError(f"{where}: missing '{key}'")
    if raw["kind"] not in KINDS:
        raise CardError(f"{where}: kind must be one of {KINDS}, got {raw['kind']!r}")
    if raw["status"] not in STATUSES:
        raise CardError(f"{where}: status must be one of {STATUSES}, got {raw['status']!r}")
    if raw["status"] != "implemented" and not raw.get("status_note"):
        raise CardError(f"{where}: status '{raw['status']}' needs a status_note saying what is missing")
    variants = tuple(
        _parse_variant(v, f"{where} variant {i}") for i, v in enumerate(raw.get("variants", []))
    )
    return PaperCard(
        slug=slug,
        number=int(raw["number"]),
        title=raw["title"],
        arxiv=str(raw["arxiv"]),
        repo=raw.get("repo", ""),
        kind=raw["kind"],
        status=raw["status"],
        status_note=raw.get("status_note", ""),
        families=tuple(raw.get("families", ())),
        notes=raw.get("notes", ""),
        variants=variants,
        path=path,
    )


@lru_cache(maxsize=None)
def load_cards(directory: str | None = None) -> tuple[PaperCard, ...]:
    """All cards, ordered by their number in the collection."""
    root = Path(directory) if directory else CARD_DIR
    cards = [parse_card(p.read_text(encoding="utf-8"), p.stem, p) for p in sorted(root.glob("*.toml"))]
    numbers = [c.number for c in cards]
    dup = {n for n in numbers if numbers.count(n) > 1}
    if dup:
        raise CardError(f"two cards claim the same paper number(s): {sorted(dup)}")
    return tuple(sorted(cards, key=lambda c: c.number))


def find_card(key: str | int) -> PaperCard:
    """A card by number (22, 'P22'), slug ('hornet') or arXiv id."""
    cards = load_cards()
    k = str(key).strip()
    if k.upper().startswith("P") and k[1:].isdigit():
        k = k[1:]
    for c in cards:
        if k.isdigit() and c.number == int(k):
            return c
        if k.lower() in (c.slug.lower(), c.arxiv):
            return c
    raise KeyError(f"no paper card matches {key!r} (use a number P1-P58, a slug or an arXiv id)")


def card_for_model(model_name: str) -> tuple[PaperCard, Variant] | None:
    """The card and variant that name this model, or None."""
    for c in load_cards():
        for v in c.variants:
            if v.model == model_name:
                return c, v
    return None


def models_of_card(card: PaperCard, pattern: str = "*") -> list[str]:
    return sorted({v.model for v in card.variants if v.implemented and fnmatch.fnmatch(v.model, pattern)})
