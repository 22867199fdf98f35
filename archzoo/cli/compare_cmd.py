"""``archzoo compare MODEL...``: brief training + benchmark of each model, leaderboard and plot."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compare", help="train models briefly, benchmark them, write a leaderboard and plot")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--data", default="digits", help="dataset (default: the embedded digits)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--img-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=32, help="benchmark batch size")
    p.add_argument("--repeats", type=int, default=5, help="benchmark repeats")
    p.add_argument("--output", default="runs", help="parent folder of the comparison folder")
    p.add_argument("--name", default="compare", help="comparison folder name")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archzoo.compare import compare, print_leaderboard

    rows, out = compare(args.models, data=args.data, epochs=args.epochs, img_size=args.img_size, output=args.output,
                        name=args.name, batch=args.batch, repeats=args.repeats, quiet=args.quiet)
    print_leaderboard(rows)
    print(f"wrote {out / 'leaderboard.csv'}, {out / 'leaderboard.json'}, {out / 'leaderboard.png'}")
    return 0
