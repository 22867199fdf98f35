"""Paper cards: one TOML file per paper of the collection (data, not code).

A card records what the paper (or its authors' README) reports, with the source of every number, so
that ``archzoo verify`` can compare our implementation with it, and the paper's claims that
``archzoo reproduce`` checks at a reduced scale. The full schema, with the rules the parser enforces,
is in ``docs/cards.md``; in short::

    number = 22                       # position in shared/seed/papers.md (P1..P58)
    title = "HorNet: ..."
    arxiv = "2207.14284"
    repo = "raoyongming/HorNet"       # authors' repository (owner/name), "" when none
    kind = "backbone"                 # backbone | method | tool | task
    status = "implemented"            # not implemented | partial | implemented
    status_note = "what is missing"   # required unless implemented
    families = ["hornet"]             # reference-vector families this paper covers
    modules = ["archzoo.models.hornet"]   # the archzoo modules implementing the paper (every card gives it)
    notes = "free text (deviations of the whole family, how numbers were sourced)"

    [[variants]]
    model = "hornet_tiny_7x7"         # registered model name (archzoo's or timm's)
    provider = "archzoo"              # archzoo | timm | none (not implemented yet)
    params_m = 22                     # reported, millions, with params_source
    flops_g = 4.0                     # reported, giga, with flops_kind and flops_source
    reference_params = 22409512       # exact count of the authors' code (shared/reference/counts)
    deviations = { params = "..." }   # per figure (params | reference_params | flops): a known mismatch

    [[variants.results]]              # what the paper reports the variant achieves, one row per number
    metric = "top1"
    dataset = "imagenet-1k"
    value = 82.8
    img_size = 224
    source = "Table 1"

    [[claims]]                        # a claim `archzoo reproduce` checks (see docs/cards.md)
    id = "..."

Unknown keys are errors everywhere (a misspelt key must not silently drop a number).
"""
from __future__ import annotations

import datetime as _dt
import fnmatch
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from archzoo.errors import CardError, ClaimError, UnknownPaperError

__all__ = [
    "PaperCard", "Variant", "Result", "Claim", "Measurement", "Expectation", "CardError", "ClaimError",
    "load_cards", "card_for_model", "find_card", "find_claim", "find_claims", "parse_card", "parse_expectation",
    "record_measurement", "models_of_card", "INFRASTRUCTURE_MODULES", "MODULE_PACKAGES", "SOURCE_WHERE",
    "says_where",
]

CARD_DIR = Path(__file__).parent
KINDS = ("backbone", "method", "tool", "task")
STATUSES = ("not implemented", "partial", "implemented")
PROVIDERS = ("archzoo", "timm", "none")
FLOP_KINDS = ("MACs", "FLOPs")
FLOP_COUNTERS = ("torch", "tf-profiler")
# the figures `archzoo verify` checks, as named in a variant's `deviations` table
DEVIATION_FIGURES = {"params": "params_m", "reference_params": "reference_params", "flops": "flops_g"}

# Packages whose every module (helpers included) must be claimed by a card's `modules`, or be listed
# here as infrastructure shared by many cards (tests/test_papers.py enforces both).
MODULE_PACKAGES = ("archzoo.models", "archzoo.methods", "archzoo.tasks")
INFRASTRUCTURE_MODULES: dict[str, str] = {
    "archzoo.tasks.classification": (
        "image classification, the task every backbone card is trained and evaluated with"
    ),
}

# A source says WHERE a number is printed or how it was obtained: a table, figure, section, the
# abstract/text/appendix, the authors' README or model zoo, a file or issue of the authors' code, or a
# count of the authors' code. A bare "paper" does not. Checked by tests/test_papers.py on every source.
SOURCE_WHERE = re.compile(
    r"\btables?\b|\btab\.|\bfig(?:ure)?s?\b|\bsec(?:tion)?s?\b|§|\babstract\b|\btext\b|\bappendix\b"
    r"|\bsupplementary\b|\breadme\b|\bmodel zoo\b|\bauthors' code\b|\bcounts?\b|\bfvcore\b|\bissue \d+"
    r"|\beq(?:uation)?\.?\s*\(?\d|\bpage \d+|\b[\w./-]+\.(?:txt|py|md|json|yaml|yml|csv|log)\b",
    re.IGNORECASE,
)


def says_where(source: str) -> bool:
    """Whether a source string says where its number comes from (see ``SOURCE_WHERE``)."""
    return isinstance(source, str) and bool(SOURCE_WHERE.search(source))


_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")            # metric names: top1, top5_err, miou, map
_DATASET_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")    # imagenet-1k, cifar10, ade20k, coco2017
_CLAIM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_EXPERIMENT_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_MODULE_RE = re.compile(r"^archzoo(\.[A-Za-z_]\w*)+$")


# -- value checks ----------------------------------------------------------------------------------

def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_type(where: str, key: str, value: Any, kind: str) -> None:
    ok = {
        "str": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": _is_number,
        "bool": lambda v: isinstance(v, bool),
        "dict": lambda v: isinstance(v, dict),
        "str list": lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v),
        "int list": lambda v: isinstance(v, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in v),
    }[kind](value)
    if not ok:
        raise CardError(f"{where}: '{key}' must be a {kind}, got {value!r}")


def _reject_unknown(where: str, raw: Mapping[str, Any], known: Mapping[str, Any], what: str) -> None:
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise CardError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} in {what} "
                        f"(allowed: {', '.join(sorted(known))}; see docs/cards.md)")


# -- results ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    """One reported result of a variant: ``value`` of ``metric`` on ``dataset``, and where it is printed."""

    metric: str                  # top1, top5, top1_err, top5_err, miou, map, ...
    dataset: str                 # imagenet-1k, cifar10, cifar100, ade20k, coco2017, ...
    value: float
    source: str                  # where in the paper / README (required)
    img_size: int | None = None  # test resolution, when it is an image size
    setting: str = ""            # how it was obtained when not the plain one: "kd", "deeplabv3", ...
    train_sizes: tuple[int, ...] = ()   # training resolution(s), when the source gives them
    note: str = ""
    deviation: str = ""          # a known, explained difference between this figure and ours

    def matches(self, **match: Any) -> bool:
        for k, want in match.items():
            if k not in _RESULT_KEYS:
                raise TypeError(f"Result has no field {k!r}")
            have = getattr(self, k)
            if k == "train_sizes":
                want = tuple(want)
            if have != want:
                return False
        return True


_RESULT_KEYS = {
    "metric": "str", "dataset": "str", "value": "number", "source": "str", "img_size": "int",
    "setting": "str", "train_sizes": "int list", "note": "str", "deviation": "str",
}


def _parse_result(raw: Any, where: str) -> Result:
    if not isinstance(raw, dict):
        raise CardError(f"{where}: a result row must be a table ([[variants.results]])")
    _reject_unknown(where, raw, _RESULT_KEYS, "a result row")
    for key in ("metric", "dataset", "value", "source"):
        if key not in raw:
            hint = " (every reported number needs its source)" if key == "source" else ""
            raise CardError(f"{where}: a result row needs '{key}'{hint}")
    for key, value in raw.items():
        _check_type(where, key, value, _RESULT_KEYS[key])
    if not raw["source"].strip():
        raise CardError(f"{where}: empty 'source' (every reported number needs its source)")
    if not _NAME_RE.match(raw["metric"]):
        raise CardError(f"{where}: metric must be a lower-case name like 'top1' or 'top5_err', got {raw['metric']!r}")
    if not _DATASET_RE.match(raw["dataset"]):
        raise CardError(f"{where}: dataset must be a lower-case name like 'imagenet-1k', got {raw['dataset']!r}")
    if "img_size" in raw and raw["img_size"] <= 0:
        raise CardError(f"{where}: img_size must be positive, got {raw['img_size']}")
    kw = dict(raw)
    if "train_sizes" in kw:
        kw["train_sizes"] = tuple(kw["train_sizes"])
    return Result(**kw)


# -- variants --------------------------------------------------------------------------------------

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
    reference_params: int | None = None
    reference_fvcore_gmacs: float | None = None
    deviations: dict[str, str] = field(default_factory=dict)
    label: str = ""
    authors_name: str = ""
    results: tuple[Result, ...] = ()

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

    def deviation(self, figure: str) -> str:
        """The explanation of a known mismatch of one figure (params | reference_params | flops), or ""."""
        if figure not in DEVIATION_FIGURES:
            raise KeyError(f"no figure {figure!r}: one of {sorted(DEVIATION_FIGURES)}")
        return self.deviations.get(figure, "")

    def results_matching(self, metric: str | None = None, dataset: str | None = None, **match: Any) -> list[Result]:
        """The result rows with this metric/dataset and the given field values (e.g. ``img_size=384``)."""
        if metric is not None:
            match["metric"] = metric
        if dataset is not None:
            match["dataset"] = dataset
        return [r for r in self.results if r.matches(**match)]

    def result(self, metric: str, dataset: str | None = None, **match: Any) -> Result | None:
        """The one result row matching (None if none); raises LookupError when several rows match
        (narrow it with ``setting=``, ``img_size=``, ...)."""
        rows = self.results_matching(metric, dataset, **match)
        if len(rows) > 1:
            raise LookupError(f"{self.name}: {len(rows)} results match {metric!r} {dataset!r} {match}: "
                              f"narrow with setting=/img_size=")
        return rows[0] if rows else None

    @property
    def top1(self) -> float | None:
        """The ImageNet-1k top-1 (%) at the variant's img_size, or None: the plain row (no setting)
        when there is one, else the first; derived as 100 - top1_err when only the error is printed."""
        for metric in ("top1", "top1_err"):
            rows = self.results_matching(metric, "imagenet-1k", img_size=self.img_size)
            if rows:
                row = next((r for r in rows if not r.setting), rows[0])
                if metric == "top1":
                    return row.value
                return round(100.0 - row.value, _decimals(row.value))
        return None


def _decimals(x: float | int) -> int:
    if isinstance(x, int):
        return 0
    s = repr(float(x))
    return len(s.split(".")[1]) if "." in s and "e" not in s else 6


_VARIANT_KEYS = {
    "model": "str", "provider": "str", "img_size": "int", "model_kwargs": "dict", "params_m": "number",
    "params_source": "str", "flops_g": "number", "flops_kind": "str", "flops_source": "str",
    "flops_tolerance": "number", "flops_exclude": "str list", "flops_counter": "str", "flops_batch": "int",
    "reference_params": "int", "reference_fvcore_gmacs": "number", "deviations": "dict", "label": "str",
    "authors_name": "str", "results": None,
}
assert set(_VARIANT_KEYS) == set(Variant.__dataclass_fields__)
_MOVED = {
    "top1": "a [[variants.results]] row (metric = \"top1\", dataset, value, source)",
    "top1_source": "the 'source' of a [[variants.results]] row",
    "deviation": "deviations = { params = \"...\" } or { flops = \"...\" } (the figure it explains)",
}


def _parse_variant(raw: Any, where: str) -> Variant:
    if not isinstance(raw, dict):
        raise CardError(f"{where}: a variant must be a table ([[variants]])")
    if "model" not in raw:
        raise CardError(f"{where}: a variant needs 'model'")
    where = f"{where} ({raw['model']})"
    for key in raw:
        if key in _MOVED:
            raise CardError(f"{where}: '{key}' is no longer a variant key: use {_MOVED[key]}")
    _reject_unknown(where, raw, _VARIANT_KEYS, "a variant")
    for key, value in raw.items():
        if _VARIANT_KEYS[key] is not None:
            _check_type(where, key, value, _VARIANT_KEYS[key])
    known = dict(raw)
    if "flops_exclude" in known:
        known["flops_exclude"] = tuple(known["flops_exclude"])
    rows = known.pop("results", [])
    if not isinstance(rows, list):
        raise CardError(f"{where}: 'results' must be an array of tables ([[variants.results]])")
    known["results"] = tuple(_parse_result(r, f"{where} result {j}") for j, r in enumerate(rows))
    v = Variant(**known)
    if v.provider not in PROVIDERS:
        raise CardError(f"{where}: provider must be one of {PROVIDERS}, got {v.provider!r}")
    if v.flops_kind not in FLOP_KINDS:
        raise CardError(f"{where}: flops_kind must be one of {FLOP_KINDS}, got {v.flops_kind!r}")
    if v.flops_counter not in FLOP_COUNTERS:
        raise CardError(f"{where}: flops_counter must be one of {FLOP_COUNTERS}, got {v.flops_counter!r}")
    if v.flops_counter != "torch" and v.flops_exclude:
        raise CardError(f"{where}: flops_exclude works with the torch counter only")
    if v.flops_batch < 1:
        raise CardError(f"{where}: flops_batch must be a positive integer, got {v.flops_batch!r}")
    if v.img_size <= 0:
        raise CardError(f"{where}: img_size must be positive, got {v.img_size}")
    for num, src in (("params_m", "params_source"), ("flops_g", "flops_source")):
        if getattr(v, num) is not None and not getattr(v, src).strip():
            raise CardError(f"{where}: {num} is given without {src} (every reported number needs its source)")
    for figure, text in v.deviations.items():
        if figure not in DEVIATION_FIGURES:
            raise CardError(f"{where}: deviations.{figure}: a deviation explains one figure verify checks: "
                            f"{', '.join(DEVIATION_FIGURES)}")
        if getattr(v, DEVIATION_FIGURES[figure]) is None:
            raise CardError(f"{where}: deviations.{figure} explains a figure the variant does not give "
                            f"({DEVIATION_FIGURES[figure]})")
        if not isinstance(text, str) or not text.strip():
            raise CardError(f"{where}: deviations.{figure} must be a non-empty explanation")
    seen: dict[tuple, int] = {}
    for j, r in enumerate(v.results):
        key = (r.metric, r.dataset, r.img_size, r.setting, r.train_sizes)
        if key in seen:
            raise CardError(f"{where} result {j}: same metric, dataset, img_size, setting and train_sizes as "
                            f"result {seen[key]} (give a 'setting' telling them apart)")
        seen[key] = j
    return v


# -- claims ----------------------------------------------------------------------------------------

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_EXPECT_RE = re.compile(
    rf"^\s*(?P<op>>=|<=|>|<)\s*(?:(?P<number>{_NUMBER})|(?P<name>[A-Za-z_]\w*)"
    rf"(?:\s*(?P<arith>[-+*])\s*(?P<operand>{_NUMBER}))?)\s*$"
)
_OPS = {">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}


@dataclass(frozen=True)
class Expectation:
    """A parsed ``expect`` relation: ``<metric> OP (NUMBER | NAME [+-* NUMBER])``."""

    text: str
    op: str
    number: float | None = None      # the right-hand side when it is a number
    name: str | None = None          # or the name of another returned value
    arith: str | None = None         # "+", "-" or "*" applied to that value
    operand: float | None = None
    metric: str | None = None        # the left-hand side: the value of the claim's metric

    def threshold(self, values: Mapping[str, float]) -> float:
        """The right-hand side evaluated on the experiment's returned values."""
        if self.name is None:
            return float(self.number)
        if self.name not in values:
            raise ClaimError(f"expectation {self.text!r} compares with {self.name!r}, which the experiment did "
                             f"not return (it returned: {', '.join(sorted(values)) or 'nothing'})")
        base = _as_float(values[self.name], self.name)
        if self.arith == "+":
            return base + self.operand
        if self.arith == "-":
            return base - self.operand
        if self.arith == "*":
            return base * self.operand
        return base

    def evaluate(self, values: Mapping[str, float]) -> tuple[bool, float]:
        """(whether the metric's value satisfies the relation, the threshold it was compared with)."""
        if self.metric is None:
            raise ClaimError(f"expectation {self.text!r} has no metric to compare (parse it with metric=...)")
        if self.metric not in values:
            raise ClaimError(f"the experiment did not return the claim's metric {self.metric!r} "
                             f"(it returned: {', '.join(sorted(values)) or 'nothing'})")
        value = _as_float(values[self.metric], self.metric)
        thr = self.threshold(values)
        return bool(_OPS[self.op](value, thr)), thr


def _as_float(x: Any, name: str) -> float:
    if not _is_number(x):
        raise ClaimError(f"the experiment returned a non-number for {name!r}: {x!r}")
    return float(x)


def parse_expectation(text: str, metric: str | None = None) -> Expectation:
    """Parse ``">= 1.0"``, ``"< 0.5"``, ``">= random_init + 0.10"``, ``">= baseline * 1.2"``; raises ClaimError.
    ``metric`` names the returned value on the left-hand side (a claim's ``metric``)."""
    m = _EXPECT_RE.match(text) if isinstance(text, str) else None
    if m is None:
        raise ClaimError(f"cannot parse expectation {text!r}: write 'OP RHS' with OP one of >=, >, <=, < and RHS a "
                         f"number or a returned value's name, optionally followed by '+ N', '- N' or '* N'")
    g = m.groupdict()
    return Expectation(
        text=text.strip(), op=g["op"], number=float(g["number"]) if g["number"] is not None else None,
        name=g["name"], arith=g["arith"], operand=float(g["operand"]) if g["operand"] is not None else None,
        metric=metric,
    )


@dataclass(frozen=True)
class Measurement:
    """A recorded run of a claim's experiment (``[claims.measured]``, written by ``archzoo reproduce --record``)."""

    value: float
    passed: bool
    budget: str
    values: dict[str, float] = field(default_factory=dict)
    date: str = ""
    command: str = ""
    archzoo_version: str = ""
    machine: str = ""
    seconds: float | None = None


_MEASURED_KEYS = {
    "value": "number", "values": "dict", "passed": "bool", "budget": "str", "date": "str", "command": "str",
    "archzoo_version": "str", "machine": "str", "seconds": "number",
}
_MEASURED_REQUIRED = ("value", "passed", "budget")


def _parse_measured(raw: Any, where: str) -> Measurement:
    if not isinstance(raw, dict):
        raise CardError(f"{where}: 'measured' must be a table ([claims.measured])")
    _reject_unknown(where, raw, _MEASURED_KEYS, "[claims.measured]")
    for key in _MEASURED_REQUIRED:
        if key not in raw:
            raise CardError(f"{where}: [claims.measured] needs '{key}'")
    raw = dict(raw)
    if isinstance(raw.get("date"), (_dt.date, _dt.datetime)):
        raw["date"] = raw["date"].isoformat()
    for key, value in raw.items():
        _check_type(where, key, value, _MEASURED_KEYS[key])
    bad = [k for k, x in raw.get("values", {}).items() if not _is_number(x)]
    if bad:
        raise CardError(f"{where}: [claims.measured] values must be numbers: {', '.join(bad)}")
    return Measurement(**raw)


@dataclass(frozen=True)
class Claim:
    """A claim of the paper that ``archzoo reproduce`` checks by running ``experiment`` at a reduced scale."""

    id: str
    statement: str
    source: str
    metric: str
    expect: str
    experiment: str
    scale: str
    unit: str = ""
    measured: Measurement | None = None

    @property
    def expectation(self) -> Expectation:
        return parse_expectation(self.expect, self.metric)

    def evaluate(self, values: Mapping[str, float]) -> tuple[bool, float]:
        """(pass, threshold) of this claim on an experiment's returned values; raises ClaimError."""
        return self.expectation.evaluate(values)

    @property
    def experiment_module(self) -> str:
        return self.experiment.split(":", 1)[0]

    @property
    def experiment_function(self) -> str:
        return self.experiment.split(":", 1)[1]

    @property
    def reproduced(self) -> bool:
        """Whether a measurement at the full budget was recorded and passed."""
        return self.measured is not None and self.measured.passed and self.measured.budget == "full"


_CLAIM_KEYS = {
    "id": "str", "statement": "str", "source": "str", "metric": "str", "unit": "str", "expect": "str",
    "experiment": "str", "scale": "str", "measured": None,
}
_CLAIM_REQUIRED = ("id", "statement", "source", "metric", "expect", "experiment", "scale")


def _parse_claim(raw: Any, where: str) -> Claim:
    if not isinstance(raw, dict):
        raise CardError(f"{where}: a claim must be a table ([[claims]])")
    if isinstance(raw.get("id"), str):
        where = f"{where} ({raw['id']})"
    _reject_unknown(where, raw, _CLAIM_KEYS, "a claim")
    for key in _CLAIM_REQUIRED:
        if key not in raw:
            raise CardError(f"{where}: a claim needs '{key}'")
    for key, value in raw.items():
        if _CLAIM_KEYS[key] is not None:
            _check_type(where, key, value, _CLAIM_KEYS[key])
    for key in _CLAIM_REQUIRED:
        if not raw[key].strip():
            raise CardError(f"{where}: empty '{key}'")
    if not _CLAIM_ID_RE.match(raw["id"]):
        raise CardError(f"{where}: id must be letters, digits, '-', '_' or '.', got {raw['id']!r}")
    if not _NAME_RE.match(raw["metric"]) and not re.match(r"^[A-Za-z_]\w*$", raw["metric"]):
        raise CardError(f"{where}: metric must be a name (a key of the experiment's returned dict), got {raw['metric']!r}")
    if not _EXPERIMENT_RE.match(raw["experiment"]):
        raise CardError(f"{where}: experiment must be 'package.module:function', got {raw['experiment']!r}")
    try:
        parse_expectation(raw["expect"], raw["metric"])
    except ClaimError as e:
        raise CardError(f"{where}: {e}") from None
    kw = {k: v for k, v in raw.items() if k != "measured"}
    measured = _parse_measured(raw["measured"], where) if "measured" in raw else None
    return Claim(**kw, measured=measured)


# -- cards -----------------------------------------------------------------------------------------

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
    modules: tuple[str, ...] = ()
    notes: str = ""
    variants: tuple[Variant, ...] = ()
    claims: tuple[Claim, ...] = ()
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

    def claim(self, claim_id: str) -> Claim:
        for c in self.claims:
            if c.id == claim_id:
                return c
        have = ", ".join(c.id for c in self.claims) or "none"
        raise ClaimError(f"{self.pid} ({self.slug}) has no claim {claim_id!r} (its claims: {have})")


_CARD_KEYS = {
    "number": "int", "title": "str", "arxiv": "str", "repo": "str", "kind": "str", "status": "str",
    "status_note": "str", "families": "str list", "modules": "str list", "notes": "str", "variants": None,
    "claims": None,
}
_CARD_REQUIRED = ("number", "title", "arxiv", "kind", "status")  # the real cards must also give `modules` (tested)


def parse_card(text: str, slug: str, path: Path | None = None) -> PaperCard:
    """Parse one card's TOML text; raises CardError naming the card and the problem."""
    where = str(path or slug)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise CardError(f"{where}: not valid TOML: {e}") from None
    for key in _CARD_REQUIRED:
        if key not in raw:
            raise CardError(f"{where}: missing '{key}'")
    _reject_unknown(where, raw, _CARD_KEYS, "the card")
    for key, value in raw.items():
        if _CARD_KEYS[key] is not None:
            _check_type(where, key, value, _CARD_KEYS[key])
    if raw["kind"] not in KINDS:
        raise CardError(f"{where}: kind must be one of {KINDS}, got {raw['kind']!r}")
    if raw["status"] not in STATUSES:
        raise CardError(f"{where}: status must be one of {STATUSES}, got {raw['status']!r}")
    if raw["status"] != "implemented" and not raw.get("status_note"):
        raise CardError(f"{where}: status '{raw['status']}' needs a status_note saying what is missing")
    for m in raw.get("modules", []):
        if not _MODULE_RE.match(m):
            raise CardError(f"{where}: modules entries are dotted archzoo module names (archzoo.models.x), got {m!r}")
    if len(set(raw.get("modules", []))) != len(raw.get("modules", [])):
        raise CardError(f"{where}: a module is listed twice in 'modules'")
    for key in ("variants", "claims"):
        if not isinstance(raw.get(key, []), list):
            raise CardError(f"{where}: '{key}' must be an array of tables ([[{key}]])")
    variants = tuple(_parse_variant(v, f"{where} variant {i}") for i, v in enumerate(raw.get("variants", [])))
    claims = tuple(_parse_claim(c, f"{where} claim {i}") for i, c in enumerate(raw.get("claims", [])))
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise CardError(f"{where}: claim id(s) {', '.join(map(repr, dup))} used twice (ids are unique in a card)")
    return PaperCard(
        slug=slug,
        number=raw["number"],
        title=raw["title"],
        arxiv=raw["arxiv"],
        repo=raw.get("repo", ""),
        kind=raw["kind"],
        status=raw["status"],
        status_note=raw.get("status_note", ""),
        families=tuple(raw.get("families", ())),
        modules=tuple(raw.get("modules", ())),
        notes=raw.get("notes", ""),
        variants=variants,
        claims=claims,
        path=path,
    )


def card_files(directory: str | Path | None = None) -> list[Path]:
    """The card files of a directory (``*.toml`` not starting with ``_``: those are generated data)."""
    root = Path(directory) if directory else CARD_DIR
    return [p for p in sorted(root.glob("*.toml")) if not p.name.startswith("_")]


@lru_cache(maxsize=None)
def load_cards(directory: str | None = None) -> tuple[PaperCard, ...]:
    """All cards, ordered by their number in the collection."""
    cards = [parse_card(p.read_text(encoding="utf-8"), p.stem, p) for p in card_files(directory)]
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
    raise UnknownPaperError(f"no paper card matches {key!r} (use a number P1-P58, a slug or an arXiv id)")


def find_claims(key: str) -> list[tuple[PaperCard, Claim]]:
    """``"P37:id"`` / ``"resformer:id"`` -> that claim; a paper alone (``"P37"``, ``"resformer"``, ``37``, an
    arXiv id: ``find_card``'s forms) -> all its claims, in card order. Raises ClaimError."""
    k = str(key).strip()
    paper, sep, claim_id = k.partition(":")
    try:
        card = find_card(paper)
    except KeyError as e:
        raise ClaimError(str(e.args[0]) if e.args else str(e)) from None
    if not sep:
        return [(card, c) for c in card.claims]
    return [(card, card.claim(claim_id.strip()))]


def find_claim(key: str) -> tuple[PaperCard, Claim]:
    """The card and claim addressed as ``"P37:multires-consistency"`` or ``"resformer:multires-consistency"``
    (the part before ':' takes any of ``find_card``'s forms). Raises ClaimError."""
    if ":" not in str(key):
        raise ClaimError(f"{key!r} names a paper, not a claim: write PAPER:CLAIM_ID (e.g. P37:multires-consistency)")
    return find_claims(key)[0]


def card_for_model(model_name: str) -> tuple[PaperCard, Variant] | None:
    """The card and variant that name this model, or None."""
    for c in load_cards():
        for v in c.variants:
            if v.model == model_name:
                return c, v
    return None


def models_of_card(card: PaperCard, pattern: str = "*") -> list[str]:
    return sorted({v.model for v in card.variants if v.implemented and fnmatch.fnmatch(v.model, pattern)})


# -- writing a measurement into a card, in place ----------------------------------------------------

@dataclass(frozen=True)
class _Header:
    offset: int      # where the header's line starts
    end: int         # where its line ends (after the newline)
    name: str        # dotted name, whitespace removed ("claims.measured")
    array: bool      # [[name]]


def _scan_toml(text: str) -> tuple[list[_Header], dict[int, bool]]:
    """Table headers of a TOML text, and for each line start whether it lies outside strings and
    brackets (a line there may be trimmed or inserted before). Strings, comments and multi-line arrays
    are skipped, so a '[' inside them is never taken for a header."""
    headers: list[_Header] = []
    free: dict[int, bool] = {}
    i, n, depth = 0, len(text), 0
    line_start = True
    while i < n:
        if line_start:
            free[i] = depth == 0
            j = i
            while j < n and text[j] in " \t":
                j += 1
            eol = text.find("\n", j)
            eol = n if eol < 0 else eol + 1
            if depth == 0 and j < n and text[j] == "[":
                m = re.match(r"\[\[([^\[\]]+)\]\]|\[([^\[\]]+)\]", text[j:eol])
                if m:
                    name = re.sub(r"\s*\.\s*", ".", (m.group(1) or m.group(2)).strip())
                    headers.append(_Header(i, eol, name, m.group(1) is not None))
                    i, line_start = eol, True
                    continue
            line_start = False
            i = j
            continue
        c = text[i]
        if c == "\n":
            i, line_start = i + 1, True
        elif c == "#":
            eol = text.find("\n", i)
            i = n if eol < 0 else eol
        elif c in "\"'":
            triple = text.startswith(c * 3, i)
            if triple:
                end = i + 3
                while True:
                    k = text.find(c * 3, end)
                    if k < 0:
                        raise CardError("unterminated multi-line string")
                    if c == '"':  # an escaped quote does not close a basic string
                        bs, p = 0, k - 1
                        while p >= 0 and text[p] == "\\":
                            bs, p = bs + 1, p - 1
                        if bs % 2:
                            end = k + 1
                            continue
                    break
                k += 3
                while k < n and text[k] == c and text.startswith(c, k):  # up to two quotes may end the string
                    k += 1
                i = k
            else:
                k = i + 1
                while k < n and text[k] != c and text[k] != "\n":
                    k += 2 if (c == '"' and text[k] == "\\") else 1
                i = k + 1
        elif c in "[{":
            depth, i = depth + 1, i + 1
        elif c in "]}":
            depth, i = max(0, depth - 1), i + 1
        else:
            i += 1
    return headers, free


def _trim_end(text: str, start: int, end: int, free: dict[int, bool]) -> int:
    """Move ``end`` back over trailing blank and comment-only lines (outside strings) of text[start:end]:
    they belong to what follows (a comment introducing the next table)."""
    while end > start:
        prev = text.rfind("\n", start, end - 1)
        line_start = start if prev < 0 else prev + 1
        line = text[line_start:end].strip()
        if line_start <= start or not free.get(line_start, False) or (line and not line.startswith("#")):
            break
        end = line_start
    return end


def _toml_value(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return repr(x)
    if isinstance(x, str):
        return json.dumps(x, ensure_ascii=False)
    if isinstance(x, dict):
        items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in x.items())
        return "{ " + items + " }" if items else "{}"
    raise CardError(f"cannot write {x!r} into a card")


def _toml_key(k: str) -> str:
    return k if re.match(r"^[A-Za-z0-9_-]+$", k) else json.dumps(k, ensure_ascii=False)


def _render_measured(m: Measurement, nl: str) -> str:
    lines = ["[claims.measured]"]
    for key in _MEASURED_KEYS:
        value = getattr(m, key)
        if key in _MEASURED_REQUIRED or (value not in ("", None) and not (key == "values" and not value)):
            lines.append(f"{key} = {_toml_value(value)}")
    return nl.join(lines) + nl


def record_measurement(card: PaperCard, claim_id: str, measured: Mapping[str, Any]) -> None:
    """Write ``measured`` as the ``[claims.measured]`` table of one claim in the card's TOML file: insert
    it, or replace the one there, leaving every other byte of the file as it was. The new text is parsed
    and checked before it replaces the file atomically (a temporary file beside it, then os.replace).
    ``measured`` takes the keys of [claims.measured] (value, passed, budget required; see docs/cards.md)."""
    if card.path is None:
        raise CardError(f"{card.slug}: the card has no file to record into")
    path = Path(card.path)
    where = f"{path} claim {claim_id!r}"
    new = _parse_measured(dict(measured), where)
    data = path.read_bytes()
    text = data.decode("utf-8")
    nl = "\r\n" if "\r\n" in text else "\n"
    old_card = parse_card(text, path.stem, path)
    ids = [c.id for c in old_card.claims]
    if claim_id not in ids:
        raise ClaimError(f"{old_card.pid} ({old_card.slug}) has no claim {claim_id!r} (its claims: {', '.join(ids) or 'none'})")
    index = ids.index(claim_id)
    headers, free = _scan_toml(text)
    claim_headers = [h for h in headers if h.array and h.name == "claims"]
    if len(claim_headers) != len(ids):
        raise CardError(f"{where}: write each claim as a [[claims]] table to record measurements into it")
    head = claim_headers[index]
    after = [h for h in headers if h.offset > head.offset]
    section_end = next((h.offset for h in after if not h.name.startswith("claims.")), len(text))
    inner = [h for h in after if h.offset < section_end]
    block = next((h for h in inner if h.name == "claims.measured" and not h.array), None)
    if block is None and old_card.claims[index].measured is not None:
        raise CardError(f"{where}: 'measured' is written inline; write it as a [claims.measured] table")
    if block is not None:
        start = block.offset
        end = next((h.offset for h in inner if h.offset > start and not h.name.startswith("claims.measured.")),
                   section_end)
        end = _trim_end(text, start, end, free)
        prefix = ""
    else:
        start = end = _trim_end(text, head.offset, section_end, free)
        prefix = "" if start == 0 or text[start - 1] == "\n" else nl
    new_text = text[:start] + prefix + _render_measured(new, nl) + text[end:]
    new_card = parse_card(new_text, path.stem, path)
    got = new_card.claims[index].measured
    expected_claims = tuple(
        c if i != index else Claim(**{**c.__dict__, "measured": new}) for i, c in enumerate(old_card.claims)
    )
    if got != new or new_card.claims != expected_claims or {**new_card.__dict__, "claims": ()} != {**old_card.__dict__, "claims": ()}:
        raise CardError(f"{where}: recording the measurement would change more than the claim's [claims.measured]")
    from archzoo.io import write_text

    write_text(path, new_text)  # a temporary file beside it, then os.replace
    load_cards.cache_clear()
