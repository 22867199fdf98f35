"""EMOv2 (P24, arXiv 2412.06674): reference vector, manifests, exact counts, tiny-width behaviour."""
from __future__ import annotations

import pytest
import timm
import torch

import archzoo
from archzoo.checkpoint import load_state_dict_strict
from archzoo.models.emo2 import SpanningWindowAttention, checkpoint_filter_fn
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems
from archzoo.validation import InputError
from archzoo.verify import count_flops, count_params

# authors' builder names (manifests/counts) -> registered models
VARIANTS = {
    "EMO2_1M_k5_hybrid": "emo2_1m",
    "EMO2_2M_k5_hybrid": "emo2_2m",
    "EMO2_5M_k5_hybrid": "emo2_5m",
    "EMO2_5M_k5_hybrid_512": "emo2_5m_512",
    "EMO2_20M_k5_hybrid": "emo2_20m",
    "EMO2_50M_k5_hybrid": "emo2_50m",
}
TINY = dict(depths=(1, 2, 2, 2), embed_dims=(8, 16, 24, 32), dim_heads=(8, 8, 8, 8), num_classes=5)


def tiny(name: str = "emo2_1m", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, **{**TINY, **kw})


def test_reference_vector(ref_file):
    # 128x128 input: stage maps 8 and 4 with windows 4 and 3 -> the zero-padding path and 2x2 partitions
    r = check_reference(ref_file("emo2_a"))
    assert r.ok, r
    assert r.rel < 1e-12, r  # measured 6e-16: float64 round-off only


@pytest.mark.parametrize("variant", [v for v in VARIANTS if not v.endswith("_512")])
def test_manifest(ref_dir, variant):
    keys = load_manifest("emo2")[variant]
    with torch.device("meta"):
        m = timm.create_model(VARIANTS[variant])
    assert manifest_problems(m, keys) == []


def test_manifest_512_shares_the_5m_keys(ref_dir):
    with torch.device("meta"):
        m = timm.create_model("emo2_5m_512")
    assert manifest_problems(m, load_manifest("emo2")["EMO2_5M_k5_hybrid"]) == []


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_exact_param_count(ref_dir, variant):
    with torch.device("meta"):
        m = timm.create_model(VARIANTS[variant])
    assert count_params(m) == load_counts("emo2")[variant]["params"]


def test_macs_1m(ref_dir):
    # FlopCounterMode on meta counts convs, linears and attention matmuls; fvcore also counts the norms
    with torch.device("meta"):
        m = timm.create_model("emo2_1m")
    macs = count_flops(m, 224) / 2e9
    fvcore = load_counts("emo2")["EMO2_1M_k5_hybrid"]["gflops_fvcore"]
    assert 0.97 < macs / fvcore < 1.0


def test_forward_backward_tiny_not_divisible_by_window():
    # 40x48 -> stage-3 map 3x3 (window 2: padded to 4x4, 2x2 partitions), stage-4 map 2x2 (window 3)
    m = tiny(window_sizes=(7, 7, 2, 3), drop_path_rate=0.1, drop_rate=0.1).train()
    out = m(torch.randn(2, 3, 40, 48))
    assert out.shape == (2, 5)
    out.sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert m.stages[3][1].eops[0].qk.conv.weight.grad.abs().sum() > 0


def _influence(attn: SpanningWindowAttention, shape: tuple[int, int], pixel: tuple[int, int]) -> torch.Tensor:
    """Which output pixels change when one input pixel changes (no conv mixes space in the module)."""
    torch.manual_seed(0)
    x = torch.randn(1, attn.qk.conv.in_channels, *shape, dtype=torch.float64)
    x2 = x.clone()
    x2[..., pixel[0], pixel[1]] += 1.0
    with torch.no_grad():
        return (attn(x2) - attn(x)).abs().sum(1)[0] > 1e-12


@pytest.mark.parametrize("partition", ["close", "remote"])
def test_window_partitions(partition):
    # 6x6 map, window 3 -> n = 2 windows per side. close: the 3x3 tile; remote: every 2nd pixel.
    attn = SpanningWindowAttention(8, 16, dim_head=4, window_size=3, partitions=(partition,)).double().eval()
    changed = _influence(attn, (6, 6), (1, 2))
    expected = torch.zeros(6, 6, dtype=torch.bool)
    if partition == "close":
        expected[0:3, 0:3] = True
    else:
        expected[1::2, 0::2] = True
    assert torch.equal(changed, expected)


def test_hybrid_is_the_sum_of_remote_and_close_and_padding_takes_part():
    kw = dict(dim_head=4, window_size=4)
    hybrid = SpanningWindowAttention(8, 16, **kw).double().eval()
    parts = [SpanningWindowAttention(8, 16, partitions=(p,), **kw).double().eval() for p in ("remote", "close")]
    for p in parts:
        p.load_state_dict(hybrid.state_dict())
    x = torch.randn(2, 8, 6, 7, dtype=torch.float64)  # padded to 8x8
    with torch.no_grad():
        torch.testing.assert_close(hybrid(x), parts[0](x) + parts[1](x), rtol=1e-12, atol=1e-12)
        # zero padding is attended to (authors' behaviour): not the same as attending the 6x7 map only
        full = SpanningWindowAttention(8, 16, dim_head=4, window_size=0, partitions=("close",)).double().eval()
        full.load_state_dict(hybrid.state_dict())
        glob = SpanningWindowAttention(8, 16, dim_head=4, window_size=8, partitions=("close",)).double().eval()
        glob.load_state_dict(hybrid.state_dict())
        assert not torch.allclose(full(x), glob(x))


def test_fused_and_explicit_attention_agree_float64():
    m = tiny(window_sizes=(7, 7, 2, 3)).double().eval()
    x = torch.randn(2, 3, 40, 48, dtype=torch.float64)
    with torch.no_grad():
        fused = m(x)
        for mod in m.modules():
            if hasattr(mod, "fused_attn"):
                mod.fused_attn = False
        explicit = m(x)
    assert fused.dtype == torch.float64
    assert ((fused - explicit).norm() / explicit.norm()).item() < 1e-12


def test_distillation_output():
    m = tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = m(x)
        out, out_kd = m.forward_distill(x)
    assert isinstance(logits, torch.Tensor)
    torch.testing.assert_close(out, logits)
    torch.testing.assert_close(out_kd, logits)  # the authors' out_kd is the same tensor
    m.set_distilled_training(True)
    assert isinstance(m.eval()(x), torch.Tensor)  # tuple only while training
    y = m.train()(x)
    assert isinstance(y, tuple) and len(y) == 2 and y[0] is y[1]


def test_features_only_and_intermediates():
    m = tiny(features_only=True).eval()
    assert m.feature_info.channels() == [8, 16, 24, 32]
    assert m.feature_info.reduction() == [4, 8, 16, 32]
    feats = m(torch.randn(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 8, 16, 24), (1, 16, 8, 12), (1, 24, 4, 6), (1, 32, 2, 3)]
    m2 = tiny().eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        final, inter = m2.forward_intermediates(x)
        torch.testing.assert_close(m2.forward_head(final), m2(x))
    assert [t.shape[1] for t in inter] == [8, 16, 24, 32]


def test_checkpoint_filter_maps_authors_keys():
    m = tiny(num_classes=7)
    own = m.state_dict()
    authors = {}
    for k, v in own.items():  # rebuild the authors' naming from archzoo's
        a = k.replace("stem.", "stage0.", 1) if k.startswith("stem.") else k
        if a.startswith("stages."):
            i, rest = a[len("stages."):].split(".", 1)
            a = f"stage{int(i) + 1}.{rest}"
        if a.startswith(("stage3.", "stage4.")) and ".norm." in a and "conv_local" not in a:
            a = a.replace(".norm.", ".norm.norm.", 1)
        a = a.replace(".eops.0.conv.", ".eops.0.net.conv.")
        if a.startswith("norm."):
            a = "norm." + a
        authors["module." + a] = v.reshape(1, -1, 1, 1) if a.endswith("ls.gamma") else v
    assert "module.stage3.1.norm.norm.weight" in authors and "module.stage1.0.eops.0.net.conv.weight" in authors
    mapped = checkpoint_filter_fn(authors, m)
    assert set(mapped) == set(own)
    load_state_dict_strict(m, mapped)
    assert checkpoint_filter_fn(own, m).keys() == own.keys()  # archzoo keys pass unchanged


def test_grad_checkpointing_same_output_and_no_weight_decay(saved_tensors):
    m = tiny().eval()
    x = torch.randn(1, 3, 32, 32)
    saved_plain, ref = saved_tensors(lambda: m(x))
    m.set_grad_checkpointing(True)
    saved_ckpt, out = saved_tensors(lambda: m(x))
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the stages really are checkpointed
    torch.testing.assert_close(out, ref)
    nwd = m.no_weight_decay()
    assert nwd and all(k.endswith("ls.gamma") for k in nwd)


def test_head_reset_and_pre_logits():
    m = tiny().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = m.forward_features(x)
        torch.testing.assert_close(m.forward_head(feats, pre_logits=True), feats.mean((2, 3)))
    m.reset_classifier(0)
    assert m(x).shape == (2, 32)
    with pytest.raises(ValueError):
        m.reset_classifier(3, "token")


def test_input_checks():
    m = archzoo.create_model("emo2_1m", **TINY)
    with pytest.raises(InputError):
        m(torch.randn(1, 3, 16, 16))  # smaller than the total stride 32
    with pytest.raises(InputError):
        m(torch.randn(1, 1, 64, 64))
