"""The 58 paper cards: present, well-formed, consistent with papers.md and with the README."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from archzoo.cli.models_cmd import papers_markdown, readme_table
from archzoo.papers import CardError, load_cards, parse_card

ROOT = Path(__file__).resolve().parent.parent
PAPERS_MD = ROOT.parent / "shared" / "seed" / "papers.md"


def test_all_58_cards_exist_with_unique_numbers():
    numbers = [c.number for c in load_cards()]
    assert sorted(numbers) == list(range(1, 59)), f"missing cards: {sorted(set(range(1, 59)) - set(numbers))}"


@pytest.mark.skipif(not PAPERS_MD.is_file(), reason="../shared/seed/papers.md not present")
def test_card_titles_match_the_collection():
    titles = dict(
        (int(m.group(1)), m.group(2).strip())
        for m in re.finditer(r"^## (\d+)\. (.+)$", PAPERS_MD.read_text(encoding="utf-8"), re.M)
    )
    for c in load_cards():
        assert c.title == titles[c.number], f"{c.slug}: title differs from papers.md P{c.number}"


def test_every_reported_number_has_a_source_and_models_are_registered():
    import timm

    import archzoo  # noqa: F401

    for c in load_cards():
        for v in c.variants:
            if v.implemented:
                assert timm.is_model(v.model), f"{c.slug}: variant {v.model} is not a registered model"
        if c.status == "implemented":
            assert all(v.implemented for v in c.variants), f"{c.slug}: 'implemented' but lists variants not implemented"


def test_readme_paper_table_is_generated_from_the_cards():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_table(readme) == papers_markdown(), (
        "README's paper table is stale: run `archzoo papers --write-readme README.md`"
    )


@pytest.mark.parametrize(
    "text, problem",
    [
        ('number = 1\ntitle = "t"\narxiv = "1"\nkind = "robot"\nstatus = "implemented"', "kind must be"),
        ('number = 1\ntitle = "t"\narxiv = "1"\nkind = "tool"\nstatus = "partial"', "status_note"),
        ('title = "t"', "missing 'number'"),
        ('number = 1\ntitle = "t"\narxiv = "1"\nkind = "tool"\nstatus = "implemented"\n'
         '[[variants]]\nmodel = "m"\nparams_m = 3.0', "without params_source"),
        ("number = [", "not valid TOML"),
    ],
)
def test_malformed_cards_are_rejected_with_the_reason(text, problem):
    with pytest.raises(CardError, match=problem):
        parse_card(text, "bad")
