"""Experiments behind the papers' claims (``[[claims]]`` of the cards in :mod:`archzoo.papers`).

One module per paper. Each experiment is ``fn(budget, out_dir=None, *, verbose=False) -> dict[str, float]``:
``budget="smoke"`` runs the whole code path in seconds (its values need not satisfy the claim);
``budget="full"`` is the small-scale measurement on a few CPU cores (minutes). The returned dict is flat
(every measured number, the claim's metric and its baseline); with ``out_dir`` a PNG of the result is
saved there. Experiments print nothing unless ``verbose``.
"""
