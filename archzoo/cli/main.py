"""Entry point of the ``archzoo`` command."""
from __future__ import annotations

import argparse
import os
import importlib
import pkgutil
import sys
from typing import NoReturn

import archzoo.cli as cli_pkg
from archzoo.errors import ArchzooError, CLIError  # CLIError re-exported: its home is archzoo.errors

__all__ = ["main", "build_parser", "ArgumentParser", "CLIError", "error_line"]


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with errors that say which command they belong to: one line and a pointer to
    ``--help`` instead of the whole usage block (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


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


def _load_plugins(argv: list[str]) -> None:
    """Import the ``--plugin`` modules before the parser is built: their tasks' and methods' options
    become flags of ``archzoo train``."""
    from archzoo.engine.plugins import load_plugins

    specs = [v for flag, v in zip(argv, argv[1:]) if flag == "--plugin"]
    specs += [a.split("=", 1)[1] for a in argv if a.startswith("--plugin=")]
    load_plugins(specs)


def main(argv: list[str] | None = None) -> int:
    try:
        _load_plugins(list(sys.argv[1:] if argv is None else argv))
    except ArchzooError as e:  # a --plugin that cannot be loaded
        if os.environ.get("ARCHZOO_DEBUG"):
            raise
        print(f"archzoo: error: {error_line(e)}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ArchzooError as e:  # a problem the user can fix: one line, exit 2. Anything else is a bug: traceback
        if os.environ.get("ARCHZOO_DEBUG"):
            raise
        print(f"archzoo {args.command}: error: {error_line(e)}", file=sys.stderr)
        return 2


def error_line(e: BaseException) -> str:
    """The one-line message of an :class:`ArchzooError`. One re-raised by a DataLoader worker carries the
    worker's traceback in its message: its last line holds the original message."""
    text = str(e).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and "Original Traceback" in text:
        last = lines[-1]
        prefix = f"{type(e).__module__}.{type(e).__name__}: "
        for p in (prefix, f"{type(e).__name__}: "):
            if last.startswith(p):
                return last[len(p):]
        return last
    return " ".join(lines) if lines else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
