"""The run folder: chosen and checked before anything is written, created by rank 0 only, and
removed again if the run fails before its first checkpoint (no half-written run folders)."""
from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Sequence

from archzoo.errors import RunDirError

__all__ = ["RunDirError", "plan_run_dir", "create_run_dir", "remove_created", "check_writable"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "run"


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_writable(path: Path) -> None:
    """Raise :class:`RunDirError` if ``path`` (existing or to be created) cannot be written."""
    anc = _nearest_existing(path)
    if anc != path and not anc.is_dir():
        raise RunDirError(f"cannot create run folder {path}: {anc} is a file, not a folder")
    if anc == path and not path.is_dir():
        raise RunDirError(f"run folder {path} is a file, not a folder")
    if not os.access(anc, os.W_OK | os.X_OK):
        raise RunDirError(f"run folder {path} is not writable (no write permission on {anc})")


def plan_run_dir(output: str | Path, name: str | None, default_name: str) -> Path:
    """The folder a new run will use (not created yet). An explicit ``name`` must not exist; the
    default name (model-data-time) gets a numeric suffix if taken."""
    root = Path(output).expanduser()
    if name is not None:
        if not name or "/" in name or name in (".", ".."):
            raise RunDirError(f"--name must be a plain folder name, got {name!r}")
        path = root / name
        if path.exists():
            raise RunDirError(f"run folder {path} already exists (continue it with --resume {path}, or pick another --name)")
    else:
        base = _slug(default_name) + time.strftime("-%Y%m%d-%H%M%S")
        path = root / base
        i = 2
        while path.exists():
            path = root / f"{base}-{i}"
            i += 1
    check_writable(path)
    return path


def create_run_dir(path: Path) -> list[Path]:
    """Create ``path`` (and missing parents) and prove it writable; returns the folders created so
    they can be removed on failure."""
    created: list[Path] = []
    p = path
    while not p.exists():
        created.append(p)
        if p.parent == p:
            break
        p = p.parent
    created.reverse()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        remove_created(created)
        raise RunDirError(f"cannot write run folder {path}: {e.strerror or e}") from None
    return created


def remove_created(created: Sequence[Path]) -> None:
    """Undo :func:`create_run_dir`: remove the folders it created (outermost first)."""
    if created:
        shutil.rmtree(created[0], ignore_errors=True)
