"""``archzoo reproduce``: run the experiments behind the papers' claims and compare with the cards.

Each paper card's ``[[claims]]`` say what the paper claims, in a form measurable at small scale: the
experiment (``module:function``, called as ``fn(budget, out_dir=...) -> dict[str, float]``), the
returned value that is checked (``metric``) and the relation it must satisfy (``expect``). Budgets:

- ``smoke``: seconds per claim; proves the experiment runs end to end (the test suite runs every claim
  this way). Its numbers are printed but not judged: a smoke run is too small to show an effect.
- ``full``: the real small-scale measurement (minutes on 2 CPU cores); judged against ``expect``.

``--record`` writes each measurement (value, every returned value, verdict, budget, date, command,
archzoo version, machine, seconds) into the claim's ``[claims.measured]`` table of its card.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import math
import os
import platform
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from archzoo.errors import ClaimError
from archzoo.papers import Claim, PaperCard, find_claims, load_cards, record_measurement

__all__ = ["BUDGETS", "ClaimRun", "select_claims", "experiment_function", "run_claim", "reproduce", "machine_description"]

BUDGETS = ("smoke", "full")


@dataclass
class ClaimRun:
    """One run of a claim's experiment."""

    card: PaperCard
    claim: Claim
    budget: str
    values: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    threshold: float | None = None
    passed: bool | None = None      # None: not judged (smoke budget, or the experiment failed)
    seconds: float = 0.0
    error: str | None = None        # the experiment raised: its traceback

    @property
    def key(self) -> str:
        return f"{self.card.pid}:{self.claim.id}"

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "error"
        if self.passed is None:
            return "ran (smoke: not judged)"
        return "pass" if self.passed else "FAIL"

    @property
    def ok(self) -> bool:
        """Counts as success for the exit code: judged and passed, or a smoke run that returned its values."""
        return self.error is None and self.passed is not False


def select_claims(keys: Iterable[str] = (), all_claims: bool = False) -> list[tuple[PaperCard, Claim]]:
    """Claims named by ``keys`` (a paper: all its claims; ``PAPER:ID``: one) or every claim of every card."""
    if all_claims:
        return [(c, cl) for c in load_cards() for cl in c.claims]
    out: list[tuple[PaperCard, Claim]] = []
    for k in keys:
        found = find_claims(k)
        if not found:
            raise ClaimError(f"paper {k} has no claims in its card yet")
        out += [f for f in found if f not in out]
    if not out:
        raise ClaimError("name papers or claims (e.g. P37, P37:multires-consistency) or pass --all")
    return out


def experiment_function(claim: Claim) -> Callable[..., dict[str, float]]:
    """The claim's experiment, imported (a card naming a missing one is a bug in the card: ClaimError)."""
    try:
        mod = importlib.import_module(claim.experiment_module)
    except ModuleNotFoundError as e:
        raise ClaimError(f"claim {claim.id}: experiment module {claim.experiment_module} not found ({e})") from None
    fn = getattr(mod, claim.experiment_function, None)
    if not callable(fn):
        raise ClaimError(f"claim {claim.id}: {claim.experiment_module} has no function {claim.experiment_function}")
    return fn


def run_claim(card: PaperCard, claim: Claim, budget: str, out_dir: Path | None = None) -> ClaimRun:
    """Run one claim's experiment; the relation is judged at the full budget only."""
    if budget not in BUDGETS:
        raise ClaimError(f"--budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    fn = experiment_function(claim)
    run = ClaimRun(card, claim, budget)
    t0 = time.perf_counter()
    try:
        values = fn(budget, out_dir=out_dir)
    except Exception:  # reported with its traceback; the other claims still run
        run.error = traceback.format_exc()
        run.seconds = time.perf_counter() - t0
        return run
    run.seconds = time.perf_counter() - t0
    if not isinstance(values, dict):
        raise ClaimError(f"claim {run.key}: {claim.experiment} returned {type(values).__name__}, not a dict of numbers")
    run.values = {k: float(v) for k, v in values.items()}
    bad = [k for k, v in run.values.items() if not math.isfinite(v)]
    if claim.metric not in run.values:
        raise ClaimError(f"claim {run.key}: {claim.experiment} did not return the metric {claim.metric!r} "
                         f"(it returned {', '.join(sorted(run.values))})")
    run.value = run.values[claim.metric]
    if bad:
        run.error = f"non-finite value(s): {', '.join(bad)}"
        return run
    passed, run.threshold = claim.evaluate(run.values)
    run.passed = passed if budget == "full" else None
    return run


def machine_description() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, {torch.get_num_threads()} threads, torch {torch.__version__}, {platform.system()}"


def record(run: ClaimRun, command: str) -> None:
    """Write ``run`` into its claim's ``[claims.measured]`` table."""
    from archzoo import __version__

    record_measurement(run.card, run.claim.id, {
        "value": run.value,
        "values": run.values,
        "passed": bool(run.passed) if run.passed is not None else False,
        "budget": run.budget,
        "date": _dt.date.today().isoformat(),
        "command": command,
        "archzoo_version": __version__,
        "machine": machine_description(),
        "seconds": round(run.seconds, 1),
    })
    load_cards.cache_clear()


def reproduce(
    claims: list[tuple[PaperCard, Claim]],
    budget: str = "smoke",
    *,
    out_dir: str | Path | None = None,
    record_results: bool = False,
    command: str | None = None,
    on_start: Callable[[PaperCard, Claim], Any] | None = None,
    on_done: Callable[[ClaimRun], Any] | None = None,
) -> list[ClaimRun]:
    """Run ``claims`` one after the other; with ``record_results``, write every judged measurement
    (and every smoke run) into the cards."""
    command = command or "archzoo " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    runs = []
    for card, claim in claims:
        if on_start is not None:
            on_start(card, claim)
        sub = Path(out_dir) / f"{card.pid}-{claim.id}" if out_dir is not None else None
        run = run_claim(card, claim, budget, sub)
        if record_results and run.error is None:
            record(run, command)
        runs.append(run)
        if on_done is not None:
            on_done(run)
    return runs
