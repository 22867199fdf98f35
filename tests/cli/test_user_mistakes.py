"""The everyday mistakes of a new user get one line that says what is wrong with the input and how to
fix it (issue 23, point 8), never a usage block, a traceback or advice to unpickle a file."""
from __future__ import annotations

import collections

import pytest
import torch

from archzoo.cli.main import main

DATA = "synthetic:classes=4,train=32,val=16,test=16"


def _one_line(rc: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, err
    assert "weights_only=False" not in lines[0] and "Traceback" not in lines[0]
    return lines[0]


def test_a_bad_flag_value_is_one_line_with_a_pointer_to_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--lr", "abc"])
    line = _one_line(e.value.code, capsys.readouterr().err)
    assert line == "archzoo train: error: argument --lr: invalid float value: 'abc' (see `archzoo train --help`)"


class _NotATensor:
    pass


@pytest.mark.parametrize("make,needle", [
    (lambda p: p.write_bytes(bytes(range(256)) * 8), "is not a PyTorch checkpoint (truncated, corrupt or another format)"),
    (lambda p: torch.save({"w": torch.ones(1), "extra": _NotATensor(), "d": collections.OrderedDict()}, p),
     "_NotATensor) besides tensors, which archzoo does not unpickle"),
])
def test_unreadable_torch_files_say_what_is_wrong_and_never_advise_unpickling(tmp_path, capsys, make, needle):
    p = tmp_path / "weights.pth"
    make(p)
    rc = main(["eval", "--checkpoint", str(p), "--model", "mobilenetv2_050", "--data", DATA, "--output", str(tmp_path / "o")])
    line = _one_line(rc, capsys.readouterr().err)
    assert needle in line and "another model" not in line, line


def test_a_truncated_safetensors_file_is_not_called_another_models_checkpoint(tmp_path, capsys):
    from safetensors.torch import save_file

    full = tmp_path / "full.safetensors"
    save_file({"w": torch.ones(64, 64)}, str(full))
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(full.read_bytes()[:100])
    rc = main(["eval", "--checkpoint", str(cut), "--model", "mobilenetv2_050", "--data", DATA, "--output", str(tmp_path / "o")])
    line = _one_line(rc, capsys.readouterr().err)
    assert "is not a valid safetensors file" in line and "another model" not in line, line


def test_a_wrong_channel_count_names_the_fix():
    import archzoo
    from archzoo.errors import InputError

    m = archzoo.create_model("cvt_13", num_classes=3)
    with pytest.raises(InputError) as e:
        m(torch.randn(1, 4, 64, 64))
    assert "expects 3 input channel(s), got 4" in str(e.value) and "in_chans=4" in str(e.value)


def test_list_counts_and_says_when_nothing_matches(capsys):
    assert main(["list", "hornet*"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = [ln.split()[0] for ln in out[1:-1]]
    assert out[0].split() == ["model", "provider", "paper"] and out[-1] == f"{len(names)} model(s)"
    import archzoo

    assert names == archzoo.list_models("hornet*")
    rc = main(["list", "hornett*"])
    line = _one_line(rc, capsys.readouterr().err)
    assert line.startswith("archzoo list: error: no model of the collection matches 'hornett*'; did you mean hornet_")
