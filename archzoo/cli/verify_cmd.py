"""``archzoo verify [PATTERN...]``: our parameter/FLOP counts against the paper cards."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify", help="compare parameter counts and FLOPs with the papers' tables")
    p.add_argument("patterns", nargs="*", metavar="PATTERN", help="fnmatch patterns over model names (default: all)")
    p.add_argument("--no-flops", action="store_true", help="count parameters only")
    p.add_argument("--no-cache", action="store_true",
                   help="recount everything (counts are cached per source fingerprint in ~/.cache/archzoo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archzoo.errors import CLIError
    from archzoo.verify import print_reports, verify

    reports = verify(args.patterns, flops=not args.no_flops, cache=not args.no_cache)
    if not reports:
        raise CLIError(f"no implemented variant with reported numbers matches {args.patterns or ['*']}")
    print_reports(reports)
    return 0 if all(r.ok for r in reports) else 1
