"""archzoo verify: counting on the meta device and the matching rule; a wrong card fails."""
from __future__ import annotations

import dataclasses

import pytest
import timm
import torch

import archzoo  # noqa: F401
from archzoo.cli.main import main
from archzoo.papers import load_cards
from archzoo.verify import count_flops, count_params, matches_reported, verify_variant


def timm_variants():
    return [(c, v) for c in load_cards() for v in c.variants if v.provider == "timm" and v.has_numbers]


def test_matching_rule_uses_printed_precision_or_tolerance():
    assert matches_reported(22.41, 22, 0.01)          # rounds to the printed "22"
    assert not matches_reported(22.6, 22, 0.01)       # rounds to 23, 2.7 % off
    assert matches_reported(4.456, 4.5, 0.05)
    assert matches_reported(28.3, 28.5, 0.01)         # within 1 %
    assert not matches_reported(28.0, 28.5, 0.01)


def test_flop_counter_counts_two_flops_per_multiply_add():
    with torch.device("meta"):
        m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.Flatten(), torch.nn.Linear(8 * 16 * 16, 10))
    macs = 3 * 8 * 9 * 16 * 16 + 8 * 16 * 16 * 10
    assert count_flops(m, 16) == 2 * macs
    assert count_flops(m, 16, exclude=["0"]) == 2 * 8 * 16 * 16 * 10
    assert count_params(m) == 3 * 8 * 9 + 8 * 16 * 16 * 10 + 10


def test_every_timm_variant_of_the_cards_passes():
    reports = [verify_variant(c, v) for c, v in timm_variants()]
    assert reports, "no timm variants in the cards"
    bad = [(r.variant.name, r.error, [(c.what, c.ours, c.paper) for c in r.checks if not (c.ok or c.explained)]) for r in reports if not r.ok]
    assert not bad


def test_a_wrong_reported_number_makes_verify_fail():
    card, variant = timm_variants()[0]
    good = verify_variant(card, variant)
    assert good.ok
    wrong = dataclasses.replace(variant, params_m=(good.params / 1e6) * 1.5, deviations={})
    rep = verify_variant(card, wrong)
    assert not rep.ok and any(c.verdict == "MISMATCH" for c in rep.checks)
    exact = dataclasses.replace(variant, reference_params=good.params + 1, deviations={})
    assert not verify_variant(card, exact).ok


def test_a_deviation_explains_only_the_figure_it_is_written_for():
    """A params deviation must not hide a FLOPs regression (nor a flops deviation a params one)."""
    card, variant = next((c, v) for c, v in timm_variants() if v.params_m is not None and v.flops_g is not None)
    good = verify_variant(card, variant)
    assert good.ok
    ours_m = good.params / 1e6
    ours_g = next(c.ours for c in good.checks if c.what.endswith("(G)"))
    wrong_params = dataclasses.replace(variant, params_m=round(ours_m * 1.5, 2), deviations={"params": "known"})
    rep = verify_variant(card, wrong_params, counts=(good.params, good.flops))
    assert rep.ok and [c.verdict for c in rep.checks if c.what == "params (M)"] == ["explained"]
    # the same params deviation, and a wrong FLOPs figure: verify fails on the FLOPs
    both_wrong = dataclasses.replace(wrong_params, flops_g=round(ours_g * 1.5, 3))
    rep = verify_variant(card, both_wrong, counts=(good.params, good.flops))
    assert not rep.ok
    assert {c.what.split(" ")[0]: c.verdict for c in rep.checks if c.what != "params (exact)"} == {
        "params": "explained", variant.flops_kind: "MISMATCH"}
    # and the other way round
    flops_explained = dataclasses.replace(both_wrong, deviations={"flops": "known"})
    rep = verify_variant(card, flops_explained, counts=(good.params, good.flops))
    assert not rep.ok and [c.verdict for c in rep.checks if c.what == "params (M)"] == ["MISMATCH"]
    # an exact-count deviation is its own figure too
    exact = dataclasses.replace(variant, reference_params=good.params + 1, deviations={"params": "known"})
    assert not verify_variant(card, exact, counts=(good.params, good.flops)).ok


def test_verify_cli_exit_codes(capsys):
    card, variant = timm_variants()[0]
    assert main(["verify", variant.model]) == 0
    assert "pass" in capsys.readouterr().out
    assert main(["verify", "no_such_model_*"]) == 2
    assert "no implemented variant" in capsys.readouterr().err


def test_counts_are_cached_per_code_fingerprint(tmp_path, monkeypatch):
    """A second verify reads the counts back instead of recounting; another fingerprint (changed
    code or versions) recounts; a corrupt cache file is ignored."""
    import archzoo.verify as av

    monkeypatch.setenv("ARCHZOO_CACHE_DIR", str(tmp_path))
    card, variant = timm_variants()[0]
    first = av.verify([variant.model], progress=False, jobs=1)
    assert av.cache_path().is_file() and [r.ok for r in first] == [True] * len(first)

    def must_not_count(*a, **k):
        raise AssertionError("counted again despite the cache")

    monkeypatch.setattr(av, "count_variant", must_not_count)
    again = av.verify([variant.model], progress=False, jobs=1)
    assert [(r.params, r.flops, r.ok) for r in again] == [(r.params, r.flops, r.ok) for r in first]
    monkeypatch.setattr(av, "code_fingerprint", lambda: "other code")
    assert all(r.error.startswith("AssertionError") for r in av.verify([variant.model], progress=False, jobs=1))
    monkeypatch.undo()
    monkeypatch.setenv("ARCHZOO_CACHE_DIR", str(tmp_path))
    av.cache_path().write_text("{not json")
    assert [r.params for r in av.verify([variant.model], progress=False, jobs=1)] == [r.params for r in first]
