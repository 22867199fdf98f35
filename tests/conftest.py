"""Shared fixtures. Reference material lives in ../shared/reference (or $ARCHZOO_REFERENCE_DIR);
tests that need it skip with a visible reason where it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archzoo.reference import reference_dir

# One thread: the tests run tiny tensors, where a second thread costs more in synchronisation than it
# gives; it also keeps timings sane when other processes share the cores. Set at import for what runs
# at collection (parametrisations that build models), and again around every test by _one_thread.
TEST_THREADS = 1
torch.set_num_threads(TEST_THREADS)


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test starts with TEST_THREADS intra-op threads, whatever an earlier test left (training
    with ``threads=`` sets its own count), and the count it found is restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(TEST_THREADS)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests never read or write the user's ~/.cache/archzoo (verify's count cache)."""
    import os

    os.environ["ARCHZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("archzoo-cache"))


@pytest.fixture(scope="session")
def ref_dir() -> Path:
    d = reference_dir()
    if d is None:
        pytest.skip("reference vectors not found: no ../shared/reference and no $ARCHZOO_REFERENCE_DIR")
    return d


@pytest.fixture
def ref_file(ref_dir):
    """ref_file("hornet_a") -> Path of ../shared/reference/hornet_a.safetensors (skips if absent)."""

    def get(name: str) -> Path:
        p = ref_dir / f"{name}.safetensors"
        if not p.is_file():
            pytest.skip(f"reference file {p} not present")
        return p

    return get


@pytest.fixture
def saved_tensors():
    """saved_tensors(fn) -> (number of tensors autograd saves for the backward while fn() runs, fn()).

    Gradient checkpointing shows as far fewer saved tensors: the checkpointed segments keep only their
    inputs. A grad-checkpointing test that only compares outputs passes when checkpointing is never
    switched on; this count fails it."""

    def run(fn):
        n = 0

        def pack(t):
            nonlocal n
            n += 1
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fn()
        return n, out

    return run


def pytest_report_header(config) -> str:
    """Say where the reference vectors come from: without them, their tests skip (with a reason, -rs)."""
    d = reference_dir()
    if d is None:
        return ("reference vectors: not found (no ../shared/reference, no $ARCHZOO_REFERENCE_DIR): the tests that "
                "compare with the authors' code skip; `pytest -rs` lists why")
    return f"reference vectors: {d} ({len(list(d.glob('*.safetensors')))} files)"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Group the skip reasons in one line each, so that 'N skipped' never goes unexplained."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for rep in skipped:
        longrepr = rep.longrepr
        text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        text = text.removeprefix("Skipped: ")
        key = "family without an implementation yet" if "no implementation yet" in text else text
        reasons[key] = reasons.get(key, 0) + 1
    terminalreporter.write_line("skipped tests, by reason: " + "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items())))
