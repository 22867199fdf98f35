"""Shared fixtures. Reference material lives in ../shared/reference (or $ARCHZOO_REFERENCE_DIR);
tests that need it skip with a visible reason where it is absent."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archzoo.reference import reference_dir

# One thread: the tests run tiny tensors, where a second thread costs more in synchronisation than it
# gives; it also keeps timings sane when other processes share the cores.
torch.set_num_threads(1)


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
