"""Registry, create_model, clear errors for unknown names and unfit inputs, safe checkpoints."""
from __future__ import annotations

import fnmatch

import pytest
import timm
import torch
from timm.models import _registry as timm_registry

import archzoo
from archzoo.checkpoint import CheckpointError, load_checkpoint, save_safetensors
from archzoo.cli.main import main
from archzoo.papers import card_for_model, load_cards
from archzoo.registry import is_archzoo_model
from archzoo.verify import _SkipMetaInit, build_on_meta, count_flops, count_params

_CARDS = load_cards()
_IMPLEMENTED = sorted({v.model for c in _CARDS for v in c.variants if v.implemented})


def test_unknown_model_suggests_close_names():
    with pytest.raises(archzoo.UnknownModelError, match="Did you mean: .*convnext_tiny"):
        archzoo.create_model("convnext_tinny")


def _card_ids():
    return [c.pid for c in _CARDS if any(v.implemented for v in c.variants)]


@pytest.mark.parametrize("pid", _card_ids())
def test_every_implemented_variant_of_a_card_is_creatable_by_name(pid):
    """Each implemented variant builds (meta device) by its card's name and kwargs through
    archzoo.create_model and through timm.create_model once archzoo is imported: the same class,
    the same state-dict layout, and the exact count of the authors' code where the card gives it."""
    card = next(c for c in _CARDS if c.pid == pid)
    params: dict[str, int] = {}  # per (model, kwargs): several variants may share one build
    for v in card.variants:
        if not v.implemented:
            continue
        assert timm.is_model(v.model), f"{pid}: {v.model} is not in timm's registry"
        key = f"{v.model} {sorted(v.model_kwargs.items())}"
        if key not in params:
            with torch.device("meta"), _SkipMetaInit():  # no weights to initialise: seconds, not minutes
                ours = archzoo.create_model(v.model, **v.model_kwargs)
                theirs = timm.create_model(v.model, **v.model_kwargs)
            assert type(ours) is type(theirs) and ours.pretrained_cfg["architecture"] == v.model, v.name
            layout = {k: t.shape for k, t in ours.state_dict().items()}
            assert layout == {k: t.shape for k, t in theirs.state_dict().items()}, v.name
            params[key] = count_params(ours)
        if v.reference_params is not None:
            assert params[key] == v.reference_params, f"{pid} {v.name}: not the authors' count"


@pytest.mark.parametrize("card", _CARDS, ids=[c.pid for c in _CARDS])
def test_list_models_of_a_paper_is_exactly_the_cards_implemented_models(card):
    expected = sorted({v.model for v in card.variants if v.implemented})
    for key in (card.pid, card.number, card.slug, card.arxiv):
        assert archzoo.list_models(paper=key) == expected, (card.pid, key)
    missing = {v.model for v in card.variants if not v.implemented}
    assert not missing & set(archzoo.list_models())


def test_list_models_is_the_implemented_models_of_the_cards():
    """archzoo's registered models and the timm models the cards name, nothing else."""
    assert archzoo.list_models() == _IMPLEMENTED
    assert archzoo.list_models("convnext*") == [n for n in _IMPLEMENTED if fnmatch.fnmatch(n, "convnext*")]
    assert set(timm.list_models("hornet*")) >= set(archzoo.list_models("hornet*")) > set()
    with pytest.raises(KeyError, match="no paper card"):
        archzoo.list_models(paper="P99")


def test_every_archzoo_model_is_named_by_a_card_as_provider_archzoo():
    own = sorted(n for n in timm_registry._model_entrypoints if is_archzoo_model(n))
    assert own, "no archzoo model registered"
    assert [n for n in own if card_for_model(n) is None] == [], "registered but named by no card"
    by_provider = {(v.model, v.provider) for c in _CARDS for v in c.variants if v.implemented}
    assert sorted(n for n, p in by_provider if p == "archzoo") == own
    # a card's timm variants are timm's own models, not archzoo registrations
    assert [n for n, p in by_provider if p == "timm" and is_archzoo_model(n)] == []


def test_wrong_channel_count_is_a_clear_error():
    m = archzoo.create_model("mobilenetv2_035", num_classes=10).eval()
    with pytest.raises(archzoo.InputError, match="expects 3 input channel\\(s\\), got 1"):
        m(torch.randn(1, 1, 64, 64))
    m1 = archzoo.create_model("mobilenetv2_035", num_classes=10, in_chans=1).eval()
    assert m1(torch.randn(2, 1, 64, 64)).shape == (2, 10)


def test_input_too_small_and_wrong_rank_are_clear_errors():
    m = archzoo.create_model("mobilenetv2_035", num_classes=10).eval()
    with pytest.raises(archzoo.InputError, match="too small.*at least 32x32"):
        m(torch.randn(1, 3, 16, 16))
    with pytest.raises(archzoo.InputError, match="4-D image batch"):
        m(torch.randn(3, 64, 64))


def test_bad_in_chans_argument():
    with pytest.raises(ValueError, match="in_chans must be a positive integer"):
        archzoo.create_model("mobilenetv2_035", in_chans=0)


def test_checkpoint_round_trip_and_errors(tmp_path):
    m = archzoo.create_model("mobilenetv2_035", num_classes=10)
    path = save_safetensors(m.state_dict(), tmp_path / "w.safetensors")
    m2 = archzoo.create_model("mobilenetv2_035", num_classes=10, checkpoint_path=str(path))
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    with pytest.raises(CheckpointError, match="does not fit model.*shape mismatches.*classifier"):
        load_checkpoint(archzoo.create_model("mobilenetv2_035", num_classes=5), path)
    corrupt = tmp_path / "c.safetensors"
    corrupt.write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        load_checkpoint(m, corrupt)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(m, tmp_path / "missing.pth")


class _Evil:
    def __reduce__(self):
        return (print, ("pickle executed",))


def test_pickled_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": _Evil()}, path)
    with pytest.raises(CheckpointError, match=r"holds a Python object \(print\) besides tensors, which archzoo does not unpickle"):
        load_checkpoint(archzoo.create_model("mobilenetv2_035"), path)
    assert "pickle executed" not in capsys.readouterr().out


def _table_row(out: str, figure: str) -> list[str]:
    """The cells (figure, paper, source, ours, verdict) of one row of info's table."""
    line = next(ln for ln in out.splitlines() if ln.strip("│ ").startswith(figure))
    return [c.strip() for c in line.strip().strip("│").split("│")]


def test_info_shows_paper_numbers_and_ours(capsys):
    assert main(["info", "convnext_tiny"]) == 0
    out = capsys.readouterr().out
    card, variant = card_for_model("convnext_tiny")
    assert card.title in out and card.arxiv in out
    # the card's numbers and ours, counted here on timm's own model at the card's resolution
    model = timm.create_model("convnext_tiny", device="meta")
    params = sum(p.numel() for p in model.parameters())
    _, paper, _, ours, verdict = _table_row(out, "params (M)")
    assert (float(paper), ours, verdict) == (variant.params_m, f"{params / 1e6:.3f}", "ok")
    _, paper, _, ours, verdict = _table_row(out, "MACs (G)")
    macs = count_flops(build_on_meta("convnext_tiny"), variant.img_size) / 2e9
    assert (float(paper), ours, verdict) == (variant.flops_g, f"{macs:.3f}", "ok")


def test_info_unknown_model_is_exit_2_with_suggestion(capsys):
    assert main(["info", "convnext_tyni"]) == 2
    assert "unknown model 'convnext_tyni'" in capsys.readouterr().err


def test_bad_cli_flag_is_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["verify", "--no-such-flag"])
    assert e.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_input_rules_name_the_model_the_rule_and_the_input():
    m = archzoo.create_model("halonet_h1", num_classes=10).eval()  # its 8x8 halo blocks must tile every map
    with pytest.raises(archzoo.InputError, match=r"halonet_h1 cannot take an input of shape \(1, 3, 72, 72\) \(min_size rule\).*256x256"):
        m(torch.randn(1, 3, 72, 72))
    with pytest.raises(archzoo.InputError, match=r"\(1, 3, 288, 288\) \(multiple rule\).*multiple of 256x256"):
        m(torch.randn(1, 3, 288, 288, device="meta"))
