"""CvT (P26, arXiv 2103.15808): reference vector, manifests, exact counts, tiny-width behaviour."""
from __future__ import annotations

import re

import pytest
import timm
import torch

import archzoo
from archzoo.checkpoint import load_state_dict_strict
from archzoo.papers import card_for_model
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems
from archzoo.validation import InputError
from archzoo.verify import count_flops, count_params
from archzoo.models.cvt import LayerNormFp32Min, checkpoint_filter_fn

# authors' variant names (manifests/counts) -> registered models
VARIANTS = {
    "cvt-13-224x224": "cvt_13",
    "cvt-21-224x224": "cvt_21",
    "cvt-13-384x384": "cvt_13_384",
    "cvt-21-384x384": "cvt_21_384",
    "cvt-w24-384x384": "cvt_w24_384",
}
TINY = dict(embed_dims=(8, 16, 24), depths=(1, 1, 2), num_heads=(1, 2, 3), num_classes=5)


def tiny(name: str = "cvt_13", **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model(name, **{**TINY, **kw})


def test_reference_vector(ref_file):
    r = check_reference(ref_file("cvt_a"))
    assert r.ok, r
    assert r.rel < 1e-5, r  # measured 4e-7: float32 round-off only


@pytest.mark.parametrize("variant", ["cvt-13-224x224", "cvt-21-224x224", "cvt-w24-384x384"])
def test_manifest(ref_dir, variant):
    keys = load_manifest("cvt")[variant]
    with torch.device("meta"):
        m = timm.create_model(VARIANTS[variant])
    assert manifest_problems(m, keys) == []


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_exact_param_count(ref_dir, variant):
    counts = load_counts("cvt")[variant]
    with torch.device("meta"):
        m = timm.create_model(VARIANTS[variant])
    assert count_params(m) == counts["params"]


def test_macs_cvt13(ref_dir):
    # FlopCounterMode on meta: convs, linears, attention matmuls (fvcore also counts the norms)
    _, readme = card_for_model("cvt_13")  # the authors' README "GFLOPs" (multiply-adds)
    with torch.device("meta"):
        m = timm.create_model("cvt_13")
    macs = count_flops(m, readme.img_size) / 2e9
    assert abs(macs - readme.flops_g) / readme.flops_g <= 0.02
    assert abs(macs - load_counts("cvt")["cvt-13-224x224"]["gflops_fvcore"]) / macs <= 0.01


def test_forward_backward_tiny():
    m = tiny(drop_path_rate=(0.0, 0.1, 0.2), drop_rate=0.1).train()
    x = torch.randn(2, 3, 32, 32)
    out = m(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert m.stages[2].cls_token.grad.abs().sum() > 0


def test_batch_of_one_keeps_batch_dim():
    m = tiny().eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        one, many = m(x[:1]), m(x)
    assert one.shape == (1, 5)  # the authors' torch.squeeze would give (5,)
    torch.testing.assert_close(one, many[:1], rtol=1e-5, atol=1e-6)


def test_features_only():
    m = tiny(features_only=True).eval()
    assert m.feature_info.channels() == [8, 16, 24]
    assert m.feature_info.reduction() == [4, 8, 16]
    feats = m(torch.randn(2, 3, 64, 48))
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 12), (2, 16, 8, 6), (2, 24, 4, 3)]
    m1 = tiny(features_only=True, out_indices=(1,))
    assert len(m1.model.stages) == 2  # later stages pruned
    assert tuple(m1(torch.randn(1, 3, 32, 32))[0].shape) == (1, 16, 4, 4)


def test_forward_intermediates_match_forward():
    m = tiny().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        final, inter = m.forward_intermediates(x)
        torch.testing.assert_close(m.forward_head(final), m(x))
        assert final.shape == (2, 1 + 2 * 2, 24)  # class token + 2x2 tokens
    assert [t.shape[1] for t in inter] == [8, 16, 24]


def test_fused_and_explicit_attention_agree_float64():
    m = tiny().double().eval()
    x = torch.randn(2, 3, 32, 40, dtype=torch.float64)
    with torch.no_grad():
        fused = m(x)
        for mod in m.modules():
            if hasattr(mod, "fused_attn"):
                mod.fused_attn = False
        explicit = m(x)
    assert fused.dtype == torch.float64
    assert ((fused - explicit).norm() / explicit.norm()).item() < 1e-12


def test_layernorm_at_least_fp32():
    ln = LayerNormFp32Min(6, eps=1e-5)
    x = torch.randn(4, 6)
    y16 = ln.to(torch.bfloat16)(x.to(torch.bfloat16))
    assert y16.dtype == torch.bfloat16
    ref = torch.nn.functional.layer_norm(x.to(torch.bfloat16).float(), (6,), eps=1e-5).to(torch.bfloat16)
    torch.testing.assert_close(y16, ref, rtol=0, atol=0)
    y64 = ln.double()(x.double())  # not downcast to float32
    torch.testing.assert_close(y64, torch.nn.functional.layer_norm(x.double(), (6,), eps=1e-5), rtol=1e-12, atol=1e-12)


def test_no_cls_token_avg_pool_and_head_reset():
    m = tiny(cls_token=False).eval()
    assert m.global_pool == "avg" and m.num_prefix_tokens == 0
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = m.forward_features(x)
        torch.testing.assert_close(m.forward_head(feats, pre_logits=True), feats.mean(1))
    m.reset_classifier(0)
    assert m(x).shape == (2, 24)
    with pytest.raises(ValueError):
        m.reset_classifier(3, "token")


def test_checkpoint_filter_maps_authors_keys():
    m = tiny()
    own = m.state_dict()
    authors = {"module." + re.sub(r"^stages\.(\d+)\.", r"stage\1.", k): v for k, v in own.items()}
    assert "module.stage2.cls_token" in authors
    authors["module.stage0.pos_embed"] = torch.zeros(1)  # declared by POS_EMBED, unused by the authors
    mapped = checkpoint_filter_fn(authors, m)
    assert set(mapped) == set(own)
    assert checkpoint_filter_fn(own, m).keys() == own.keys()  # archzoo keys pass unchanged
    load_state_dict_strict(m, mapped)


def test_grad_checkpointing_same_output(saved_tensors):
    m = tiny().eval()
    x = torch.randn(1, 3, 32, 32, requires_grad=True)
    saved_plain, ref = saved_tensors(lambda: m(x))
    m.set_grad_checkpointing(True)
    saved_ckpt, out = saved_tensors(lambda: m(x))
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the blocks really are checkpointed
    torch.testing.assert_close(out, ref)
    assert m.no_weight_decay() == {"stages.2.cls_token"}


def test_input_checks():
    m = archzoo.create_model("cvt_13", **TINY)
    with pytest.raises(InputError):
        m(torch.randn(1, 3, 8, 8))  # smaller than the total stride 16
    with pytest.raises(InputError):
        m(torch.randn(1, 1, 32, 32))


@pytest.mark.slow
def test_full_size_cvt13_forward():
    m = timm.create_model("cvt_13").eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
