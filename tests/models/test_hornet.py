"""HorNet (P22, arXiv 2207.14284): exact counts, the authors' key/shape manifests, reference vectors
of the authors' code, the Global-Local Filter, the timm interface and input errors.

Full-size models are only built on the meta device; forwards run at base width 8."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F
from timm.models import get_pretrained_cfg_value
from torch import nn

import archzoo
from archzoo.models.hornet import GlobalLocalFilter, HorNet, checkpoint_filter_fn, gnconv_dims
from archzoo.papers import card_for_model, find_card
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems, read_reference
from archzoo.validation import InputError
from archzoo.verify import count_flops, count_params

VARIANTS = [
    "hornet_tiny_7x7", "hornet_tiny_gf", "hornet_small_7x7", "hornet_small_gf", "hornet_base_7x7",
    "hornet_base_gf", "hornet_base_gf_img384", "hornet_large_7x7", "hornet_large_gf", "hornet_large_gf_img384",
]
TINY = dict(depths=(1, 1, 1, 1), base_dim=8)
TINY_GF = (None, None, (4, 3), (2, 2))  # rfft2 sizes of the 4x4 / 2x2 maps of a 64x64 input: no resize


def _head_params(num_classes: int, width: int) -> int:
    return num_classes * width + num_classes


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, **kwargs)


# ---- full size, meta device ----------------------------------------------------------------------
@pytest.mark.parametrize("name", VARIANTS)
def test_counts_and_manifest_of_the_authors_code(name, ref_dir):
    counts, manifest = load_counts("hornet")[name], load_manifest("hornet")[name]
    model = _meta(name)
    assert manifest_problems(model, manifest) == []
    default_classes = model.num_classes
    expected = counts["params_21841"] if default_classes == 21841 else counts["params_1k"]
    assert count_params(model) == expected
    # the 1000-class form of every variant, L included
    model.reset_classifier(1000)
    assert count_params(model) == counts["params_1k"]


def test_large_readme_counts_are_a_10459_class_head(ref_dir):
    """The README's 209 / 211 / 216 M: ImageNet-21K-P winter21 (10450) + 9 ImageNet-1K classes."""
    counts = load_counts("hornet")
    readme = {v.model: v.params_m for v in find_card(22).variants if v.model_kwargs.get("num_classes") == 10459}
    assert sorted(readme) == ["hornet_large_7x7", "hornet_large_gf", "hornet_large_gf_img384"]
    for name, reported in readme.items():
        backbone = counts[name]["params_1k"] - _head_params(1000, 1536)
        assert round((backbone + _head_params(10459, 1536)) / 1e6) == reported
        assert round(counts[name]["params_1k"] / 1e6) != reported
        assert round(counts[name]["params_21841"] / 1e6) != reported


def test_card_matches_the_counts(ref_dir):
    card, counts = find_card(22), load_counts("hornet")
    assert card.title == "HorNet: Efficient High-Order Spatial Interactions with Recursive Gated Convolutions"
    assert {v.model for v in card.variants} == set(VARIANTS)
    for v in card.variants:
        assert timm.is_model(v.model)
        if v.reference_params is not None:
            classes = v.model_kwargs.get("num_classes", get_pretrained_cfg_value(v.model, "num_classes"))
            key = "params_21841" if classes == 21841 else "params_1k"
            assert v.reference_params == counts[v.model][key], v.name


def test_gf_macs_within_1pct_of_the_readme_and_fvcore(ref_dir):
    _, readme = card_for_model("hornet_tiny_gf")
    model = _meta("hornet_tiny_gf")
    macs = count_flops(model, readme.img_size) / 2e9
    assert abs(macs / readme.flops_g - 1) < 0.01  # README, as the card records it
    assert abs(macs / load_counts("hornet")["hornet_tiny_gf"]["gflops_fvcore"] - 1) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "hornet_tiny_gf"])
def test_macs_within_1pct_of_fvcore(name, ref_dir):
    c = load_counts("hornet")[name]
    macs = count_flops(_meta(name, num_classes=1000), c["res"]) / 2e9
    assert abs(macs / c["gflops_fvcore"] - 1) < 0.01


# ---- the authors' function -----------------------------------------------------------------------
@pytest.mark.parametrize("file", ["hornet_a", "hornet_gf_a"])
def test_reference_vectors(file, ref_file):
    r = check_reference(ref_file(file))
    assert r.ok, r
    # We replay the authors' own float32 FFT and land at float64 round-off; computing the GF FFT in
    # float64 instead gives ~2e-12 on hornet_gf_a, inside the 1e-9 tolerance, so hold it tighter.
    assert r.rel < 1e-13, r


def test_gf_filter_is_the_authors_definition():
    torch.manual_seed(0)
    f = GlobalLocalFilter(8, h=4, w=3).double()
    f.pre_norm, f.post_norm = nn.Identity(), nn.Identity()  # isolate the two branches
    x = torch.randn(2, 8, 4, 4, dtype=torch.float64)
    out = f(x)
    local = F.conv2d(x[:, :4], f.dw.weight, padding=1, groups=4)
    spec = torch.fft.rfft2(x[:, 4:].float(), dim=(2, 3), norm="ortho")  # the authors' float32 FFT
    glob = torch.fft.irfft2(spec * torch.view_as_complex(f.complex_weight), s=(4, 4), dim=(2, 3), norm="ortho")
    torch.testing.assert_close(out[:, 0::2], local, rtol=0, atol=1e-15)  # interleaved, not concatenated
    torch.testing.assert_close(out[:, 1::2], glob, rtol=0, atol=1e-15)


def test_gf_weight_is_resized_only_when_the_feature_size_differs(monkeypatch):
    torch.manual_seed(0)
    stored = GlobalLocalFilter(8, h=14, w=8).double().eval()
    calls = []
    real = F.interpolate
    monkeypatch.setattr(F, "interpolate", lambda *a, **k: calls.append(k.get("size")) or real(*a, **k))

    x14 = torch.randn(1, 8, 14, 14, dtype=torch.float64)
    stored(x14)
    assert calls == []  # 14x14 -> rfft2 14x8 = stored size

    x8 = torch.randn(1, 8, 8, 8, dtype=torch.float64)
    out = stored(x8)
    assert calls == [(8, 5)]
    # same as a filter holding the pre-resized weight (bilinear, align_corners=True, per real/imag)
    resized = GlobalLocalFilter(8, h=8, w=5).double().eval()
    sd = stored.state_dict()
    sd["complex_weight"] = real(
        sd["complex_weight"].permute(3, 0, 1, 2), size=(8, 5), mode="bilinear", align_corners=True
    ).permute(1, 2, 3, 0)
    resized.load_state_dict(sd)
    torch.testing.assert_close(out, resized(x8), rtol=0, atol=1e-14)


def test_authors_checkpoint_loads_into_other_filter_sizes(ref_file):
    """The filter resizes a GF complex_weight stored at another size (the authors' fine-tuning rule);
    at the sizes the forward would resize to anyway, the output is unchanged."""
    ref = read_reference(ref_file("hornet_gf_a"))
    model = HorNet(num_classes=10, depths=(1, 1, 2, 1), base_dim=8, scale=1 / 3, filter_sizes=TINY_GF).double().eval()
    sd = checkpoint_filter_fn({"model": {k: v.double() for k, v in ref.state_dict.items()}}, model)
    assert sd["stages.2.blocks.0.gnconv.dwconv.complex_weight"].shape == (30, 4, 3, 2)
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        out = model(ref.input.double())
    torch.testing.assert_close(out, ref.outputs["__output__"].double(), rtol=1e-12, atol=1e-12)
    # archzoo's own state dicts pass through unchanged
    own = model.state_dict()
    assert list(checkpoint_filter_fn(own, model)) == list(own)


# ---- tiny width: interface ------------------------------------------------------------------------
def test_forward_backward_tiny():
    torch.manual_seed(0)
    model = HorNet(num_classes=7, filter_sizes=TINY_GF, drop_path_rate=0.1, **TINY)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 7)
    out.square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.stages[2].blocks[0].gnconv.dwconv.complex_weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["hornet_tiny_7x7", "hornet_tiny_gf"])
def test_features_only_at_four_strides(name):
    feats = timm.create_model(name, features_only=True, **TINY)
    assert feats.feature_info.reduction() == [4, 8, 16, 32]
    assert feats.feature_info.channels() == [8, 16, 32, 64]
    outs = feats(torch.randn(1, 3, 96, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 24, 16), (1, 16, 12, 8), (1, 32, 6, 4), (1, 64, 3, 2)]


def test_forward_intermediates_and_pruning():
    torch.manual_seed(0)
    model = HorNet(num_classes=5, filter_sizes=TINY_GF, **TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        assert [t.shape[1] for t in inter] == [8, 16, 32, 64]
        torch.testing.assert_close(final, model.forward_features(x))
        torch.testing.assert_close(model.forward_head(final), model(x))
        only = model.forward_intermediates(x, indices=[1, 2], intermediates_only=True)
        torch.testing.assert_close(only[1], inter[2])
        assert model.forward_head(final, pre_logits=True).shape == (1, 64)
        kept = model.prune_intermediate_layers([1])
        assert kept == [1] and len(model.stages) == 2
        assert model(x).shape == (1, 16, 8, 8)  # the pruned model has no head


def test_reset_classifier_and_grad_checkpointing(saved_tensors):
    torch.manual_seed(0)
    model = HorNet(num_classes=5, filter_sizes=TINY_GF, **TINY)
    x = torch.randn(2, 3, 64, 64)
    saved_plain, ref = saved_tensors(lambda: model(x))
    ref.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.set_grad_checkpointing(True)
    saved_ckpt, out = saved_tensors(lambda: model(x))
    out.sum().backward()
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the blocks really are checkpointed
    torch.testing.assert_close(out, ref)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], msg=n)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3) and model.get_classifier().out_features == 3
    model.reset_classifier(0)
    assert model(x).shape == (2, 64)


def test_builds_in_float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = timm.create_model("hornet_tiny_gf", num_classes=4, **TINY)
    finally:
        torch.set_default_dtype(old)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert model(torch.randn(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64


# ---- errors ------------------------------------------------------------------------------------
def test_clear_errors_for_inputs_it_cannot_take():
    model = archzoo.create_model("hornet_tiny_gf", num_classes=3, **TINY)
    with pytest.raises(InputError, match="too small"):
        model(torch.randn(1, 3, 16, 64))
    with pytest.raises(InputError, match="3 input channel"):
        model(torch.randn(1, 1, 64, 64))
    with pytest.raises(InputError, match="4-D"):
        model(torch.randn(3, 64, 64))
    # the model's own check too, without archzoo's hook
    bare = HorNet(num_classes=3, **TINY)
    with pytest.raises(InputError, match="at least 32x32"):
        bare(torch.randn(1, 3, 31, 64))
    assert bare(torch.randn(1, 3, 32, 45)).shape == (1, 3)  # sizes need not be multiples of 32


def test_clear_errors_for_configurations_it_cannot_build():
    with pytest.raises(ValueError, match="even"):
        HorNet(depths=(1, 1, 1, 1), base_dim=10, filter_sizes=TINY_GF)  # stage 3 gates sum to 75
    HorNet(depths=(1, 1, 1, 1), base_dim=10)  # the 7x7 form takes it
    with pytest.raises(ValueError, match="divisible by 2\\*\\*3"):
        gnconv_dims(12, 4)
    with pytest.raises(ValueError, match="one entry per stage"):
        HorNet(depths=(1, 1, 1, 1), base_dim=8, orders=(2, 3, 4))


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("hornet_tiny_7x7", 224), ("hornet_tiny_gf", 224), ("hornet_tiny_gf", 256)])
def test_full_size_forward(name, size):
    model = timm.create_model(name).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
