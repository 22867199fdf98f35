"""``archzoo reference check FILE...``: archzoo against the authors' code's reference vectors."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reference", help="check archzoo against reference vectors of the authors' code")
    rsub = p.add_subparsers(dest="reference_command", metavar="ACTION")
    rsub.required = True
    c = rsub.add_parser("check", help="load each file's authors' weights, run its input, compare outputs")
    c.add_argument("files", nargs="+", metavar="FILE", help="reference .safetensors files")
    c.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Exit 0 when every file passes, 1 when any fails or errors, 3 when the only problems are
    families without an implementation yet."""
    from rich.progress import Progress

    from archzoo.reference import check_reference, print_results

    results = []
    with Progress(transient=True) as bar:
        task = bar.add_task("checking", total=len(args.files))
        for f in args.files:
            bar.update(task, description=f"checking {f}")
            results.append(check_reference(f))
            bar.advance(task)
    print_results(results)
    failed = [r for r in results if r.status in ("FAIL", "error")]
    missing = [r for r in results if r.status == "no implementation"]
    print(f"{len(results)} files: {sum(r.ok for r in results)} pass, {len(failed)} fail, "
          f"{len(missing)} without an implementation")
    if failed:
        return 1
    return 3 if missing else 0
