"""Registry, create_model, clear errors for unknown names and unfit inputs, safe checkpoints."""
from __future__ import annotations

import pytest
import timm
import torch

import archzoo
from archzoo.checkpoint import CheckpointError, load_checkpoint, save_safetensors
from archzoo.cli.main import main
from archzoo.registry import is_archzoo_model


def test_unknown_model_suggests_close_names():
    with pytest.raises(archzoo.UnknownModelError, match="Did you mean: .*convnext_tiny"):
        archzoo.create_model("convnext_tinny")


def test_archzoo_models_are_in_timms_registry():
    own = [n for n in archzoo.list_models() if is_archzoo_model(n)]
    if not own:
        pytest.skip("no archzoo family registered yet")
    assert all(timm.is_model(n) for n in own)


def test_list_models_covers_timm_models_of_the_cards():
    names = archzoo.list_models("convnext*")
    assert "convnext_tiny" in names and "convnext_xlarge" in names
    assert set(archzoo.list_models(paper="P10")) >= {"mobilenetv2_100", "mobilenetv2_140"}
    with pytest.raises(KeyError, match="no paper card"):
        archzoo.list_models(paper="P99")


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
    with pytest.raises(CheckpointError, match="weights_only"):
        load_checkpoint(archzoo.create_model("mobilenetv2_035"), path)
    assert "pickle executed" not in capsys.readouterr().out


def test_info_shows_paper_numbers_and_ours(capsys):
    assert main(["info", "convnext_tiny"]) == 0
    out = capsys.readouterr().out
    assert "A ConvNet for the 2020s" in out and "2201.03545" in out
    assert "params (M)" in out and "28.589" in out


def test_info_unknown_model_is_exit_2_with_suggestion(capsys):
    assert main(["info", "convnext_tyni"]) == 2
    assert "unknown model 'convnext_tyni'" in capsys.readouterr().err


def test_bad_cli_flag_is_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["verify", "--no-such-flag"])
    assert e.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_shape_failure_inside_a_model_names_the_model_and_input():
    m = archzoo.create_model("halonet_h1", num_classes=10).eval()  # needs sizes its 8x8 blocks divide
    with pytest.raises(archzoo.InputError, match=r"halonet_h1 cannot take an input of shape \(1, 3, 72, 72\).*configured for \(3, 256, 256\)"):
        m(torch.randn(1, 3, 72, 72))
