"""Console output of a run: rich progress bars per epoch (step, loss, throughput, ETA), one line per
epoch, a summary table at the end. ``quiet`` keeps only the plain lines (logs, CI)."""
from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = ["RunConsole"]


class RunConsole:
    """Everything a run prints. Only rank 0 creates an enabled one."""

    def __init__(self, enabled: bool = True, quiet: bool = False) -> None:
        self.enabled = enabled
        self.quiet = quiet
        self.out = Console(file=sys.stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=sys.stderr, highlight=False)
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def line(self, text: str) -> None:
        if self.enabled:
            self.out.print(text, markup=False)

    def note(self, text: str) -> None:
        """A message for interactive users only (not printed with --quiet)."""
        if self.enabled and not self.quiet:
            self.out.print(text, markup=False)

    def warn(self, text: str) -> None:
        if self.enabled:
            self.err.print(f"warning: {text}", markup=False)

    # progress bars -----------------------------------------------------------------------------
    def start(self, description: str, total: int, completed: int = 0, training: bool = True) -> None:
        """A bar for one epoch (step, loss, images/s, elapsed, ETA); ``training=False``: steps only."""
        if not self.enabled or self.quiet:
            return
        stats = [TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[ips]} img/s")] if training else []
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=30),
            MofNCompleteColumn(),
            *stats,
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.err,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, completed=completed, loss="-", ips="-")

    def advance(self, steps: int = 1, loss: float | None = None, ips: float | None = None) -> None:
        if self._progress is None or self._task is None:
            return
        fields: dict[str, Any] = {}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if ips is not None:
            fields["ips"] = f"{ips:,.0f}"
        self._progress.update(self._task, advance=steps, **fields)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
        self._progress = None
        self._task = None

    # summary -----------------------------------------------------------------------------------
    def table(self, title: str, rows: list[tuple[str, str]]) -> None:
        if not self.enabled:
            return
        if self.quiet:
            self.out.print("; ".join(f"{k} {v}" for k, v in rows), markup=False)
            return
        t = Table(title=title, show_header=False)
        t.add_column("what", style="bold")
        t.add_column("value")
        for k, v in rows:
            t.add_row(k, v)
        self.out.print(t)
