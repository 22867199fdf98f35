"""``archzoo reproduce PAPER|CLAIM ... [--budget smoke|full] [--record]``: run the experiments behind
the papers' claims (their cards' ``[[claims]]``) and compare the measured values with the claims.

    archzoo reproduce P37                        # every claim of ResFormer's card, smoke budget
    archzoo reproduce P25:tune-memory --budget full --record
    archzoo reproduce --all --budget smoke       # every claim of the collection runs
    archzoo reproduce --list                     # the claims and their last recorded measurements
"""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reproduce", help="run the experiments behind the papers' claims and check them",
                       description="Run each claim's experiment at a budget and compare the measured value with the "
                       "claim. Exit code 0 when every judged claim holds (smoke runs are not judged), 1 when one fails "
                       "or its experiment raises, 2 on a usage error.")
    p.add_argument("claims", nargs="*", metavar="PAPER|PAPER:CLAIM", help="P37, resformer, P37:multires-consistency")
    p.add_argument("--all", action="store_true", help="every claim of every card")
    p.add_argument("--budget", choices=("smoke", "full"), default="smoke",
                   help="smoke: seconds, proves it runs (not judged); full: the measurement (minutes), judged")
    p.add_argument("--record", action="store_true", help="write the measurements into the cards' [claims.measured]")
    p.add_argument("--out", metavar="DIR", default="runs/reproduce", help="figures go to DIR/PAPER-CLAIM/ (default: runs/reproduce)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's)")
    p.add_argument("--list", action="store_true", help="list the claims with their last recorded measurements")
    p.set_defaults(func=run)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"


def run(args: argparse.Namespace) -> int:
    import contextlib
    from pathlib import Path

    import torch
    from rich.console import Console
    from rich.table import Table

    from archzoo.errors import CLIError
    from archzoo.reproduce import reproduce, select_claims

    console = Console(highlight=False)
    if args.threads is not None:
        if args.threads < 1:
            raise CLIError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.list:
        return _list(select_claims(args.claims, all_claims=args.all or not args.claims), console)
    claims = select_claims(args.claims, all_claims=args.all)

    def start(card, claim):
        console.print(f"[bold]{card.pid}:{claim.id}[/] ({args.budget}) {claim.statement}", markup=True)

    def done(r):
        tail = f"  {r.seconds:.1f}s"
        if r.error is not None:
            console.print(f"  [red]error[/]: {r.error.strip().splitlines()[-1]}{tail}")
        else:
            console.print(f"  {r.claim.metric} = {_fmt(r.value)}{r.claim.unit and ' ' + r.claim.unit}, expected "
                          f"{r.claim.expect} (threshold {_fmt(r.threshold)}): {r.verdict}{tail}", markup=False)

    with console.status("running experiments") if console.is_terminal else contextlib.nullcontext():
        runs = reproduce(claims, args.budget, out_dir=Path(args.out), record_results=args.record, on_start=start, on_done=done)
    t = Table(title=f"archzoo reproduce ({args.budget})")
    for col in ("claim", "metric", "measured", "expected", "verdict", "s"):
        t.add_column(col)
    for r in runs:
        t.add_row(r.key, r.claim.metric, _fmt(r.value), r.claim.expect, r.verdict, f"{r.seconds:.1f}")
    console.print(t)
    for r in runs:
        if r.error is not None and "Traceback" in r.error:
            console.print(f"[red]{r.key}[/] raised:\n{r.error}", markup=True, highlight=False)
    if args.record:
        console.print(f"recorded {sum(r.error is None for r in runs)} measurement(s) into the cards")
    judged = [r for r in runs if r.passed is not None]
    console.print(f"{sum(r.passed is True for r in judged)}/{len(judged)} judged claim(s) hold; "
                  f"{sum(r.error is not None for r in runs)} error(s)")
    return 0 if all(r.ok for r in runs) else 1


def _list(claims, console) -> int:
    from rich.table import Table

    t = Table(title="claims")
    for col in ("claim", "statement", "expect", "last measured", "verdict"):
        t.add_column(col)
    for card, c in claims:
        m = c.measured
        last = f"{_fmt(m.value)} ({m.budget}, {m.date})" if m else "-"
        t.add_row(f"{card.pid}:{c.id}", c.statement, f"{c.metric} {c.expect}", last,
                  ("pass" if m.passed else "fail") if m else "-")
    console.print(t)
    return 0
