"""archzoo's error types: every error the library raises on purpose derives from :class:`ArchzooError`.

The command line turns these, and only these, into a one-line message with exit code 2. Anything
else (a ``RuntimeError`` from a kernel, a ``KeyError`` from a bug, an out-of-memory) is a bug or a
resource problem and keeps its traceback, so that it is never reported as a user's mistake.

Each class also derives from the built-in exception it used to be (``ValueError``, ``KeyError``), so
code that caught those before still works.
"""
from __future__ import annotations

__all__ = [
    "ArchzooError",
    "InputError",
    "ConfigError",
    "CheckpointError",
    "CheckpointMismatchError",
    "CardError",
    "DataError",
    "RunDirError",
    "ExportError",
    "UnknownModelError",
    "ClaimError",
    "CLIError",
    "OutputError",
    "ReferenceFileError",
    "UnknownPaperError",
]


class ArchzooError(Exception):
    """Base of every error archzoo raises for a problem the user can fix (a one-line message)."""


class InputError(ArchzooError, ValueError):
    """An input tensor does not fit the model (channels, rank, size rules)."""


class ConfigError(ArchzooError, ValueError):
    """An invalid option of a run, a task or a method (the message names the option)."""


class CheckpointError(ArchzooError, ValueError):
    """A checkpoint cannot be read, or does not fit the model."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint whose tensors do not fit the model (missing, unexpected or mis-shaped keys)."""


class CardError(ArchzooError, ValueError):
    """A paper card is malformed."""


class DataError(ArchzooError, ValueError):
    """A data spec names no data set, or the data cannot be read."""


class RunDirError(ArchzooError, ValueError):
    """A run folder cannot be created, written or resumed."""


class ExportError(ArchzooError, ValueError):
    """A model cannot be exported in the asked format."""


class UnknownModelError(ArchzooError, KeyError):
    """No registered model has this name."""

    def __str__(self) -> str:  # KeyError's str() quotes its argument; a message reads better plain
        return str(self.args[0]) if self.args else ""


class ClaimError(ArchzooError, ValueError):
    """A claim of a paper card names no experiment, or its expectation cannot be evaluated."""


class DivergedError(ArchzooError, FloatingPointError):
    """Training produced a non-finite loss (the learning rate is too high for this setup, most often)."""


class CLIError(ArchzooError):
    """A command-line usage error found after argument parsing."""


class OutputError(ArchzooError, OSError):
    """An output file the user named (``--out``, a report) cannot be written."""


class ReferenceFileError(ArchzooError, ValueError):
    """A reference-vector file (or the reference folder) is missing or unreadable."""


class UnknownPaperError(ArchzooError, KeyError):
    """No paper card matches this key (number, P-id, slug or arXiv id)."""

    def __str__(self) -> str:  # KeyError's str() quotes its argument; a message reads better plain
        return str(self.args[0]) if self.args else ""
