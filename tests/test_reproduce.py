"""`archzoo reproduce`: every claim of every card runs at the smoke budget; at the full budget claims
are judged against their `expect`, and `--record` writes the measurement into the card."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from archzoo.cli.main import main
from archzoo.errors import ClaimError
from archzoo.papers import load_cards, parse_card
from archzoo.reproduce import reproduce, run_claim, select_claims

CALLS: list[str] = []


def fake_experiment(budget: str, out_dir: Path | None = None) -> dict[str, float]:
    CALLS.append(budget)
    return {"gain": 2.5 if budget == "full" else 0.1, "base": 1.0}


def broken_experiment(budget: str, out_dir: Path | None = None) -> dict[str, float]:
    raise RuntimeError("a bug inside the experiment")


CARD = '''number = 99
title = "A test paper"
arxiv = "0000.00000"
repo = ""
kind = "method"
status = "implemented"
notes = "test card"

[[claims]]
id = "holds"
statement = "the gain is at least half a point above the base"
source = "Table 1"
metric = "gain"
expect = ">= base + 0.5"
experiment = "tests.test_reproduce:fake_experiment"
scale = "nothing"

[[claims]]
id = "fails"
statement = "the gain is above 5"
source = "Table 2"
metric = "gain"
expect = "> 5"
experiment = "tests.test_reproduce:fake_experiment"
scale = "nothing"
'''


def _card(tmp_path: Path):
    p = tmp_path / "testpaper.toml"
    p.write_text(CARD)
    return parse_card(p.read_text(), "testpaper", p)


def test_every_claim_of_the_collection_runs_at_smoke_budget(tmp_path):
    claims = select_claims(all_claims=True)
    papers = {c.pid for c, _ in claims}
    assert {"P37", "P25", "P16", "P56", "P21"} <= papers, papers  # the first claims
    runs = reproduce(claims, "smoke", out_dir=tmp_path)
    for r in runs:
        assert r.error is None, f"{r.key}: {r.error}"
        assert r.claim.metric in r.values and math.isfinite(r.value), r.key
        assert r.passed is None  # smoke runs are not judged
    # every experiment draws what it measured, into its claim's folder
    for r in runs:
        assert list((tmp_path / f"{r.card.pid}-{r.claim.id}").glob("*.png")), r.key


def test_full_budget_judges_and_records_into_the_card(tmp_path):
    card = _card(tmp_path)
    runs = reproduce([(card, c) for c in card.claims], "full", record_results=True, command="archzoo reproduce P99 --budget full --record")
    assert [(r.passed, r.threshold, r.value) for r in runs] == [(True, 1.5, 2.5), (False, 5.0, 2.5)]
    assert [r.ok for r in runs] == [True, False]
    again = parse_card((tmp_path / "testpaper.toml").read_text(), "testpaper", tmp_path / "testpaper.toml")
    m_hold, m_fail = (c.measured for c in again.claims)
    assert (m_hold.value, m_hold.passed, m_hold.budget, m_hold.values) == (2.5, True, "full", {"gain": 2.5, "base": 1.0})
    assert m_hold.command == "archzoo reproduce P99 --budget full --record" and m_hold.machine and m_hold.date
    assert (m_fail.passed, again.claims[1].reproduced, again.claims[0].reproduced) == (False, False, True)
    # smoke: runs, not judged
    r = run_claim(card, card.claims[0], "smoke")
    assert (r.passed, r.ok, r.value) == (None, True, 0.1)


def test_an_experiment_that_raises_is_reported_with_its_traceback(tmp_path):
    text = CARD.replace("tests.test_reproduce:fake_experiment", "tests.test_reproduce:broken_experiment", 1)
    p = tmp_path / "broken.toml"
    p.write_text(text)
    card = parse_card(text, "broken", p)
    r = run_claim(card, card.claims[0], "full")
    assert r.verdict == "error" and not r.ok and "RuntimeError: a bug inside the experiment" in r.error


def test_bad_names_are_one_line_errors(capsys):
    with pytest.raises(ClaimError, match="no claim"):
        select_claims(["P37:no-such-claim"])
    rc = main(["reproduce", "P37:no-such-claim"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("archzoo reproduce: error:"), err
    rc = main(["reproduce"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "--all" in err[0], err


def test_every_claim_names_an_importable_experiment():
    from archzoo.reproduce import experiment_function

    for card in load_cards():
        for c in card.claims:
            assert callable(experiment_function(c)), f"{card.pid}:{c.id}"
