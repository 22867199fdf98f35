"""The 58 paper cards: present, well-formed, sourced, consistent with papers.md, with the modules that
implement them and with the README; the claim schema and recording a measurement into a card."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import archzoo.papers as papers
from archzoo.cli.models_cmd import load_status, papers_markdown, readme_table, status_path, verified_variants
from archzoo.errors import ArchzooError
from archzoo.papers import (
    INFRASTRUCTURE_MODULES, MODULE_PACKAGES, CardError, ClaimError, find_claim, find_claims, load_cards, parse_card,
    parse_expectation, record_measurement, says_where,
)

ROOT = Path(__file__).resolve().parent.parent
PAPERS_MD = ROOT.parent / "shared" / "seed" / "papers.md"
HEAD = 'number = 1\ntitle = "t"\narxiv = "1"\nkind = "tool"\nstatus = "implemented"\nmodules = []\n'
VARIANT = HEAD + '[[variants]]\nmodel = "m"\n'
CLAIM = """
[[claims]]
id = "c1"
statement = "the thing is better"
source = "Table 4"
metric = "gain"
unit = "%"
expect = ">= 1.0"
experiment = "archzoo.claims.fixture:run"
scale = "width 1/4, 1 % of the data, 200 steps"
"""


def sources_of(card):
    """(where, source) of every reported number of a card: params, FLOPs, each result row, each claim."""
    for v in card.variants:
        if v.params_m is not None:
            yield f"{card.slug} {v.name} params_m", v.params_source
        if v.flops_g is not None:
            yield f"{card.slug} {v.name} flops_g", v.flops_source
        for r in v.results:
            yield f"{card.slug} {v.name} {r.metric} {r.dataset}", r.source
    for c in card.claims:
        yield f"{card.slug} claim {c.id}", c.source


# -- the real cards ----------------------------------------------------------------------------------

def test_all_58_cards_exist_with_unique_numbers():
    numbers = [c.number for c in load_cards()]
    assert sorted(numbers) == list(range(1, 59)), f"missing cards: {sorted(set(range(1, 59)) - set(numbers))}"


def test_every_card_file_parses_on_its_own():
    files = papers.card_files()
    assert len(files) == 58
    for p in files:
        card = parse_card(p.read_text(encoding="utf-8"), p.stem, p)
        assert card.slug == p.stem and card.title


@pytest.mark.skipif(not PAPERS_MD.is_file(), reason="../shared/seed/papers.md not present")
def test_card_titles_match_the_collection():
    titles = dict(
        (int(m.group(1)), m.group(2).strip())
        for m in re.finditer(r"^## (\d+)\. (.+)$", PAPERS_MD.read_text(encoding="utf-8"), re.M)
    )
    for c in load_cards():
        assert c.title == titles[c.number], f"{c.slug}: title differs from papers.md P{c.number}"


def test_models_are_registered():
    import timm

    import archzoo  # noqa: F401

    for c in load_cards():
        for v in c.variants:
            if v.implemented:
                assert timm.is_model(v.model), f"{c.slug}: variant {v.model} is not a registered model"
        if c.status == "implemented":
            assert all(v.implemented for v in c.variants), f"{c.slug}: 'implemented' but lists variants not implemented"


@pytest.mark.parametrize("source", [
    "Table 2", "paper Table VII (285M); authors' README", "Tab. 3", "Fig. 4", "Figure 5 (left)", "Section 4.2",
    "Sec. 5", "abstract", "the paper's text, p. 6", "appendix B", "authors' README (Model Zoo, ImageNet-1K)",
    "model zoo of the authors", "authors' code count (issue 13)", "fvcore count of the authors' code at 224",
    "authors' classification/results/stitches_res_s_l.txt, cfg_id 0",
])
def test_the_source_rule_accepts_sources_that_say_where(source):
    assert says_where(source)


@pytest.mark.parametrize("source", ["", " ", "paper", "the paper", "Paper.", "arXiv 2207.14284", "see notes",
                                    "reported", "authors", "ImageNet-1K"])
def test_the_source_rule_rejects_sources_that_do_not_say_where(source):
    assert not says_where(source)


def test_every_number_of_every_card_has_a_source_that_says_where():
    bad = [(where, src) for c in load_cards() for where, src in sources_of(c) if not says_where(src)]
    assert bad == [], f"sources that do not say where the number is printed: {bad}"
    assert sum(1 for c in load_cards() for _ in sources_of(c)) > 400  # the walk above does see the numbers


def test_results_replace_top1_and_the_former_extra_keys():
    from archzoo.papers import find_card

    emo = {v.model: v for v in find_card("emo2").variants}
    assert emo["emo2_1m"].top1 == 72.3
    assert emo["emo2_1m"].result("top1", "imagenet-1k", setting="kd").value == 73.5
    assert emo["emo2_5m"].result("miou", "ade20k", setting="deeplabv3").value == 39.8
    assert emo["emo2_5m"].result("map", "coco2017", setting="ssdlite", img_size=512).value == 34.8
    with pytest.raises(LookupError, match="narrow"):
        emo["emo2_1m"].result("top1", "imagenet-1k")   # plain and kd rows both match
    ibn = {v.model: v for v in find_card("ibnnet").variants}
    assert ibn["resnet50_ibn_a"].result("top5_err", "imagenet-1k").value == 6.32
    assert ibn["resnet50_ibn_a"].top1 == 77.46        # 100 - the printed top-1 error
    res = [v for v in find_card("resformer").variants if v.label == "ResFormer-S-MR (128/224/384)"][0]
    assert res.top1 == 82.28 and res.result("top1", "imagenet-1k", img_size=512).value == 83.86
    assert res.result("top1", "imagenet-1k", img_size=96).train_sizes == (128, 224, 384)
    simple = find_card("simplenet").variants[0]
    assert simple.result("top1", "cifar100").value == 78.37 and simple.top1 is None
    assert [v.top1 for v in find_card("nasnet").variants if v.model == "nasnet_a_cifar"] == [None]
    sg = find_card("sgformer").variants[0]
    assert sg.reference_fvcore_gmacs == 4.818
    assert find_card("poincare_resnet").variants[0].authors_name == "hyperbolic-8-16-32-resnet-20"


def test_deviations_name_the_figure_they_explain():
    from archzoo.papers import find_card

    figures = {(c.slug, f) for c in load_cards() for v in c.variants for f in v.deviations}
    assert figures == {("crossvit", "params"), ("emo2", "params"), ("mobilenetv2", "params"), ("rmt", "flops")}
    assert find_card("rmt").variants[0].deviation("params") == ""
    assert "2.5 G" in find_card("rmt").variants[0].deviation("flops")


# -- modules -----------------------------------------------------------------------------------------

def _package_modules() -> list[str]:
    """Every module file under archzoo/models, archzoo/methods, archzoo/tasks (recursively, helpers
    included, package __init__ files excluded)."""
    out = []
    for pkg in MODULE_PACKAGES:
        root = ROOT.joinpath(*pkg.split("."))
        for f in sorted(root.rglob("*.py")) if root.is_dir() else []:
            if f.name != "__init__.py":
                out.append(".".join(f.relative_to(ROOT).with_suffix("").parts))
    return out


def test_every_listed_module_imports():
    for c in load_cards():
        for m in c.modules:
            importlib.import_module(m)  # raises: the card names a module that does not exist


def test_every_model_method_and_task_module_is_claimed_by_a_card_or_is_infrastructure():
    modules = _package_modules()
    assert "archzoo.models._slab_layers" in modules and "archzoo.methods.convbn" in modules
    claimed = {m for c in load_cards() for m in c.modules}
    unclaimed = [m for m in modules if m not in claimed and m not in INFRASTRUCTURE_MODULES]
    assert unclaimed == [], (f"modules no card lists in its `modules` (add them to the card of the paper they "
                             f"implement, or to INFRASTRUCTURE_MODULES with a reason): {unclaimed}")
    for m, why in INFRASTRUCTURE_MODULES.items():
        assert m in modules, f"INFRASTRUCTURE_MODULES lists {m}, which does not exist"
        assert why.strip(), m


def test_cards_with_archzoo_models_list_the_modules_registering_them():
    import timm

    import archzoo  # noqa: F401

    for c in load_cards():
        for v in c.variants:
            if v.provider == "archzoo":
                module = timm.models.model_entrypoint(v.model).__module__
                assert module in c.modules, f"{c.slug}: {v.model} is registered by {module}, not in the card's modules"


def test_every_card_says_which_modules_implement_it():
    import tomllib

    for p in papers.card_files():
        assert "modules" in tomllib.loads(p.read_text(encoding="utf-8")), f"{p.name}: no `modules` (use [] when none)"
    with pytest.raises(CardError, match="dotted archzoo module names"):
        parse_card(HEAD.replace("modules = []", 'modules = ["hornet"]'), "bad")
    with pytest.raises(CardError, match="listed twice"):
        parse_card(HEAD.replace("modules = []", 'modules = ["archzoo.models.cvt", "archzoo.models.cvt"]'), "bad")


# -- malformed cards ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, problem",
    [
        ('number = 1\ntitle = "t"\narxiv = "1"\nkind = "robot"\nstatus = "implemented"\nmodules = []', "kind must be"),
        ('number = 1\ntitle = "t"\narxiv = "1"\nkind = "tool"\nstatus = "partial"\nmodules = []', "status_note"),
        ('title = "t"', "missing 'number'"),
        (VARIANT + "params_m = 3.0", "without params_source"),
        (VARIANT + 'flops_g = 3.0\nflops_source = "  "', "without flops_source"),
        ("number = [", "not valid TOML"),
        # unknown keys: top level, variant, result row (a misspelt key must not drop a number silently)
        (HEAD + "top1 = 80.0", r"unknown key\(s\) 'top1' in the card"),
        (VARIANT + "cifar10_top1 = 95.0", r"variant 0 \(m\): unknown key\(s\) 'cifar10_top1' in a variant"),
        (VARIANT + "top1 = 80.0\ntop1_source = 'Table 1'", "no longer a variant key: use a \\[\\[variants.results\\]\\] row"),
        (VARIANT + 'deviation = "x"', "no longer a variant key: use deviations"),
        (VARIANT + 'params_m = 3.0\nparams_source = "Table 1"\ndeviations = { flops = "x" }', "deviations.flops explains a figure"),
        (VARIANT + 'params_m = 3.0\nparams_source = "Table 1"\ndeviations = { top1 = "x" }', "explains one figure"),
        (VARIANT + 'params_m = 3.0\nparams_source = "Table 1"\ndeviations = { params = "" }', "non-empty explanation"),
        (VARIANT + 'params_m = "3.0"\nparams_source = "Table 1"', "'params_m' must be a number"),
        # result rows
        (VARIANT + '[[variants.results]]\nmetric = "top1"\ndataset = "imagenet-1k"\nvalue = 80.0',
         r"bad variant 0 \(m\) result 0: a result row needs 'source'"),
        (VARIANT + '[[variants.results]]\nmetric = "top1"\ndataset = "imagenet-1k"\nvalue = 80.0\nsource = ""',
         r"variant 0 \(m\) result 0: empty 'source'"),
        (VARIANT + '[[variants.results]]\nmetric = "top1"\ndataset = "imagenet-1k"\nvalue = 80.0\nsource = "Table 1"\n'
         'resolution = 224', r"result 0: unknown key\(s\) 'resolution'"),
        (VARIANT + '[[variants.results]]\nmetric = "Top-1"\ndataset = "imagenet-1k"\nvalue = 80.0\nsource = "Table 1"',
         "metric must be a lower-case name"),
        (VARIANT + '[[variants.results]]\nmetric = "top1"\ndataset = "ImageNet"\nvalue = 80.0\nsource = "Table 1"',
         "dataset must be a lower-case name"),
        (VARIANT + '[[variants.results]]\nmetric = "top1"\ndataset = "cifar10"\nvalue = 95.0\nsource = "Table 1"\n'
         '[[variants.results]]\nmetric = "top1"\ndataset = "cifar10"\nvalue = 96.0\nsource = "Table 2"',
         "result 1: same metric, dataset"),
    ],
)
def test_malformed_cards_are_rejected_with_the_reason(text, problem):
    with pytest.raises(CardError, match=problem):
        parse_card(text, "bad")


def test_card_errors_are_archzoo_errors():
    assert issubclass(CardError, ArchzooError) and issubclass(CardError, ValueError)
    assert papers.CardError is CardError


# -- claims --------------------------------------------------------------------------------------------

def test_a_claim_parses_into_a_frozen_claim():
    card = parse_card(HEAD + CLAIM, "fixture")
    (claim,) = card.claims
    assert (claim.id, claim.metric, claim.unit, claim.source) == ("c1", "gain", "%", "Table 4")
    assert claim.experiment_module == "archzoo.claims.fixture" and claim.experiment_function == "run"
    assert claim.measured is None and not claim.reproduced
    assert claim.evaluate({"gain": 1.5}) == (True, 1.0)
    with pytest.raises(Exception):
        claim.id = "other"  # frozen


@pytest.mark.parametrize("edit, problem", [
    (lambda t: t.replace('source = "Table 4"\n', ""), r"claim 0 \(c1\): a claim needs 'source'"),
    (lambda t: t.replace('source = "Table 4"', 'source = ""'), r"claim 0 \(c1\): empty 'source'"),
    (lambda t: t.replace('scale = "width 1/4, 1 % of the data, 200 steps"\n', ""), "a claim needs 'scale'"),
    (lambda t: t + 'budget = "full"\n', r"claim 0 \(c1\): unknown key\(s\) 'budget' in a claim"),
    (lambda t: t.replace('">= 1.0"', '"at least 1.0"'), "cannot parse expectation 'at least 1.0'"),
    (lambda t: t.replace('">= 1.0"', '"== 1.0"'), "cannot parse expectation"),
    (lambda t: t.replace('">= 1.0"', '">= baseline ** 2"'), "cannot parse expectation"),
    (lambda t: t.replace("archzoo.claims.fixture:run", "archzoo.claims.fixture.run"), "'package.module:function'"),
    (lambda t: t.replace('id = "c1"', 'id = "two words"'), "id must be"),
    (lambda t: t + CLAIM, r"claim id\(s\) 'c1' used twice"),
    (lambda t: t + '[claims.measured]\nvalue = 1.0\npassed = true\n', r"\[claims.measured\] needs 'budget'"),
    (lambda t: t + '[claims.measured]\nvalue = 1.0\npassed = true\nbudget = "full"\nhost = "x"\n',
     r"unknown key\(s\) 'host' in \[claims.measured\]"),
    (lambda t: t + '[claims.measured]\nvalue = 1.0\npassed = "yes"\nbudget = "full"\n', "'passed' must be a bool"),
])
def test_malformed_claims_are_rejected_naming_the_card_and_claim(edit, problem):
    with pytest.raises(CardError, match=problem) as e:
        parse_card(edit(HEAD + CLAIM), "fixture")
    assert "fixture" in str(e.value)


@pytest.mark.parametrize("text, values, result", [
    (">= 1.0", {"m": 1.0}, (True, 1.0)),
    ("> 1.0", {"m": 1.0}, (False, 1.0)),
    ("<= -0.5", {"m": -0.6}, (True, -0.5)),
    ("< 2e-3", {"m": 0.001}, (True, 0.002)),
    (">= random_init + 0.10", {"m": 0.5, "random_init": 0.45}, (False, 0.55)),
    (">= random_init - 0.10", {"m": 0.5, "random_init": 0.45}, (True, 0.35)),
    (">= baseline * 1.2", {"m": 12.0, "baseline": 10.0}, (True, 12.0)),
    ("<baseline", {"m": 9.0, "baseline": 10.0}, (True, 10.0)),
])
def test_expectations_evaluate_to_pass_and_threshold(text, values, result):
    ok, thr = parse_expectation(text, "m").evaluate(values)
    assert ok == result[0] and thr == pytest.approx(result[1])


def test_an_expectation_naming_a_value_the_experiment_did_not_return_is_a_claim_error():
    e = parse_expectation(">= random_init + 0.1", "m")
    with pytest.raises(ClaimError, match="'random_init', which the experiment did not return"):
        e.evaluate({"m": 1.0})
    with pytest.raises(ClaimError, match="did not return the claim's metric 'm'"):
        e.evaluate({"random_init": 1.0})
    with pytest.raises(ClaimError, match="non-number"):
        parse_expectation(">= 1", "m").evaluate({"m": "high"})
    with pytest.raises(ClaimError):
        parse_expectation("about 1")


def _fixture_cards(tmp_path, monkeypatch, text):
    path = tmp_path / "fixture.toml"
    path.write_text(text, encoding="utf-8")
    card = parse_card(text, "fixture", path)
    monkeypatch.setattr(papers, "load_cards", lambda directory=None: (card,))
    return path, card


def test_find_claim_takes_the_paper_in_any_of_find_cards_forms(tmp_path, monkeypatch):
    _, card = _fixture_cards(tmp_path, monkeypatch, HEAD.replace('arxiv = "1"', 'arxiv = "2212.00776"') + CLAIM
                             + CLAIM.replace('"c1"', '"c2"'))
    for key in ("P1:c2", "p1:c2", "1:c2", "fixture:c2", "2212.00776:c2"):
        got_card, claim = find_claim(key)
        assert got_card is card and claim.id == "c2", key
    assert [c.id for _, c in find_claims("P1")] == ["c1", "c2"]
    assert [c.id for _, c in find_claims("fixture:c1")] == ["c1"]
    with pytest.raises(ClaimError, match="has no claim 'c3'.*c1, c2"):
        find_claim("P1:c3")
    with pytest.raises(ClaimError, match="no paper card matches"):
        find_claim("P99:c1")
    with pytest.raises(ClaimError, match="names a paper, not a claim"):
        find_claim("P1")


TRICKY = HEAD + '''notes = """
A note whose lines look like TOML tables:
[[claims]]
[claims.measured]
value = 3
"""

[[variants]]
model = "m"
params_m = 3.0   # a comment
params_source = "Table 1"
''' + CLAIM + '''
# the second claim, with a comment before it and a multi-line array
[[claims]]
id = "c2"
statement = """two lines
[claims.measured] in a string"""
source = "Fig. 3"
metric = "acc"
expect = ">= random_init + 0.10"
experiment = "archzoo.claims.fixture:run2"
scale = "tiny"
'''

MEASURED = {
    "value": 0.61, "values": {"acc": 0.61, "random_init": 0.43, "odd key": 1.0}, "passed": True, "budget": "full",
    "date": "2026-12-03", "command": 'archzoo reproduce P1:c2 --budget full --record --note "quoted"',
    "archzoo_version": "0.1.0", "machine": "x86_64, 2 cores, torch 2.x", "seconds": 123.4,
}


def _without(text: str, block: str) -> str:
    assert text.count(block) == 1
    return text.replace(block, "")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_record_measurement_inserts_then_replaces_and_leaves_every_other_byte(tmp_path, monkeypatch, newline):
    text = TRICKY.replace("\n", newline)
    path = tmp_path / "fixture.toml"
    path.write_bytes(text.encode())
    card = parse_card(text, "fixture", path)
    record_measurement(card, "c2", MEASURED)
    once = path.read_bytes().decode()
    after = parse_card(once, "fixture", path)
    m = after.claim("c2").measured
    assert (m.value, m.values, m.passed, m.budget, m.date, m.command, m.seconds) == (
        0.61, MEASURED["values"], True, "full", "2026-12-03", MEASURED["command"], 123.4)
    assert after.claim("c2").reproduced and after.claims[0] == card.claims[0]
    assert after.variants == card.variants and after.notes == card.notes
    # the new block is the only difference, and it sits at the end of the second claim
    assert once.startswith(text), once
    block = once[len(text):]
    assert block.startswith("[claims.measured]" + newline) and block.endswith(newline)
    assert _without(once, block) == text
    # recording again replaces the block: no second block, other bytes unchanged
    record_measurement(after, "c2", {**MEASURED, "value": 0.4, "values": {"acc": 0.4, "random_init": 0.43},
                                     "passed": False})
    twice = path.read_bytes().decode()
    assert twice.count("[claims.measured]" + newline) == 1 + text.count("[claims.measured]" + newline)
    again = parse_card(twice, "fixture", path)
    assert again.claim("c2").measured.value == 0.4 and not again.claim("c2").reproduced
    assert {**again.__dict__, "claims": ()} == {**card.__dict__, "claims": ()}
    assert twice.startswith(text)


def test_record_measurement_into_the_first_of_two_claims(tmp_path):
    path = tmp_path / "fixture.toml"
    path.write_text(TRICKY, encoding="utf-8")
    card = parse_card(TRICKY, "fixture", path)
    record_measurement(card, "c2", MEASURED)
    record_measurement(parse_card(path.read_text(), "fixture", path), "c1",
                       {"value": 1.7, "values": {"gain": 1.7}, "passed": True, "budget": "smoke"})
    text = path.read_text()
    final = parse_card(text, "fixture", path)
    assert final.claim("c1").measured.value == 1.7 and not final.claim("c1").reproduced  # not at budget full
    assert final.claim("c2").measured.value == 0.61
    # the first claim's block went right after its own keys, before the comment introducing the second
    c1_block = '[claims.measured]\nvalue = 1.7\nvalues = { gain = 1.7 }\npassed = true\nbudget = "smoke"\n'
    assert c1_block + "\n# the second claim" in text
    record_measurement(final, "c1", {"value": 1.9, "passed": True, "budget": "full"})
    assert parse_card(path.read_text(), "fixture", path).claim("c1").measured == papers.Measurement(
        value=1.9, passed=True, budget="full")
    assert path.read_text() == text.replace(c1_block, '[claims.measured]\nvalue = 1.9\npassed = true\nbudget = "full"\n')


def test_record_measurement_rejects_bad_input_and_leaves_the_file(tmp_path):
    path = tmp_path / "fixture.toml"
    path.write_text(TRICKY, encoding="utf-8")
    card = parse_card(TRICKY, "fixture", path)
    with pytest.raises(CardError, match="unknown key"):
        record_measurement(card, "c1", {"value": 1.0, "passed": True, "budget": "full", "gpu": "none"})
    with pytest.raises(CardError, match="needs 'budget'"):
        record_measurement(card, "c1", {"value": 1.0, "passed": True})
    with pytest.raises(ClaimError, match="no claim 'c9'"):
        record_measurement(card, "c9", {"value": 1.0, "passed": True, "budget": "full"})
    assert path.read_text() == TRICKY
    assert [p.name for p in tmp_path.iterdir()] == ["fixture.toml"]  # no temporary file left behind


def test_recorded_measurements_of_the_real_cards_agree_with_their_expectations():
    for c in load_cards():
        for claim in c.claims:
            m = claim.measured
            if m is not None and m.values:
                assert claim.evaluate(m.values)[0] == m.passed, f"{c.pid}:{claim.id}"


# -- the README's table --------------------------------------------------------------------------------

def test_the_recorded_checks_cover_the_current_variants():
    status = load_status()
    assert status, f"{status_path()} missing: run `archzoo papers --check --write-readme README.md`"
    for c in load_cards():
        names = verified_variants(c)
        assert len(set(names)) == len(names), f"{c.slug}: two variants with one name (give a label)"
        assert set(status.get("verify", {}).get(c.slug, {})) == set(names), (
            f"{c.slug}: the recorded verify verdicts are stale: run `archzoo papers --check --write-readme README.md`")


def test_readme_paper_table_is_generated_from_the_cards():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme_table(readme) == papers_markdown(), (
        "README's paper table is stale: run `archzoo papers --write-readme README.md`"
    )


def test_the_table_counts_verified_variants_reference_files_and_reproduced_claims():
    status = {"verify": {"hornet": {"hornet_tiny_7x7": "pass", "hornet_tiny_gf": "FAIL"}},
              "reference": {"hornet_a.safetensors": {"family": "hornet", "status": "pass"},
                            "hornet_gf_a.safetensors": {"family": "hornet_gf", "status": "FAIL"},
                            "cvt_a.safetensors": {"family": "cvt", "status": "pass"}}}
    row = next(line for line in papers_markdown(status).splitlines() if line.startswith("| P22 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    n = len(verified_variants(papers.find_card("hornet")))
    assert cells[-3:] == [f"1/{n} ({n - 2} unchecked)", "1/2", "-"]


def test_reference_fvcore_gmacs_are_the_counts_of_the_authors_code(ref_dir):
    import json

    counts = {}
    for f in sorted((ref_dir / "counts").glob("*.json")):
        for model, entry in json.loads(f.read_text()).items():
            if isinstance(entry, dict):
                counts[model] = entry
    given = [(c.slug, v) for c in load_cards() for v in c.variants if v.reference_fvcore_gmacs is not None]
    assert given
    for slug, v in given:
        assert v.reference_fvcore_gmacs == counts[v.model]["gflops_fvcore"], (slug, v.name)
