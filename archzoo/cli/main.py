"""Entry point of the ``archzoo`` command."""
from __future__ import annotations

import argparse
import os
import importlib
import pkgutil
import sys

import archzoo.cli as cli_pkg


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with errors that say which command they belong to (exit code 2)."""


class CLIError(Exception):
    """A user error: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    from archzoo import __version__

    parser = ArgumentParser(prog="archzoo", description="archzoo: the paper collection's models, verified.")
    parser.add_argument("--version", action="version", version=f"archzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for info in sorted(pkgutil.iter_modules(cli_pkg.__path__), key=lambda m: m.name):
        if info.name in ("main", "__init__") or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"archzoo.cli.{info.name}")
        if hasattr(mod, "register"):
            mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, KeyError, FileNotFoundError, PermissionError) as e:
        if os.environ.get("ARCHZOO_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"archzoo {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
