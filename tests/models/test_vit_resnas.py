"""ViT-ResNAS (P7, arXiv 2109.00642): reference vector, exact counts of the authors' code, the
network-definition grammar, tiny-width behaviour."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F

import archzoo
from archzoo.checkpoint import load_state_dict_strict
from archzoo.papers import card_for_model
from archzoo.reference import check_reference
from archzoo.validation import InputError
from archzoo.verify import build_on_meta, count_flops, count_params
from archzoo.models.vit_resnas import (
    NETWORK_DEFS, BlockDef, EmbedDef, HeadDef, ReductionDef, ResidualSpatialReduction, ViTResNAS,
    checkpoint_filter_fn, parse_network_def,
)

VARIANTS = ["vit_resnas_tiny", "vit_resnas_small", "vit_resnas_medium"]
TINY_DEF = ("((4, 16), (1, (16, 2, 8), (16, 32), 1), (3, 16, 24), (1, (24, 3, 8), (24, 48), 1), "
            "(3, 24, 32), (1, (32, 2, 8), (32, 64), 1), (2, 32, 5))")


def tiny(**kw) -> ViTResNAS:
    torch.manual_seed(0)
    return ViTResNAS(**{**dict(network_def=TINY_DEF, img_size=56), **kw})


def test_reference_vector(ref_file):
    r = check_reference(ref_file("vit_resnas_a"))
    assert r.ok, r
    assert r.rel < 1e-12, r  # measured 7e-16 (float64)


@pytest.mark.parametrize("name", VARIANTS)
def test_exact_params_and_macs(name):
    # the card: reference_params counted by building the authors' FlexibleDistillVisionTransformerSR
    # (patch_output=True, 1000 classes) from the searched_net scripts' --network-def at commit 303e7c3;
    # flops_g: fvcore's GMACs of their code (issue 14)
    _, authors = card_for_model(name)
    m = build_on_meta(name)
    assert count_params(m) == authors.reference_params
    macs = count_flops(m, authors.img_size) / 2e9
    assert abs(macs - authors.flops_g) / authors.flops_g < 0.01, macs  # measured 1.783, 2.846, 4.513


def test_searched_definitions_parse_to_the_papers_stages():
    d = parse_network_def(NETWORK_DEFS["tiny"])
    assert d[0] == EmbedDef(4, 176) and d[-1] == HeadDef(704, 1000)
    assert [x for x in d if isinstance(x, ReductionDef)] == [ReductionDef(176, 352), ReductionDef(352, 704)]
    assert sum(isinstance(x, BlockDef) for x in d) == 5 + 6 + 5
    assert d[1] == BlockDef(176, 3, 32, 704, True)  # attention width 96 != embedding width 176
    m = build_on_meta("vit_resnas_tiny")
    assert tuple(m.blocks[0].attn.qkv.weight.shape) == (3 * 96, 176)
    assert tuple(m.blocks[0].attn.proj.weight.shape) == (176, 96)
    assert parse_network_def(m.network_def) == d  # the stored literal round-trips


@pytest.mark.parametrize("bad, message", [
    ("((4, 16), (1, (16, 2, 8), (16, 32), 1), (2, 24, 5))", "head input"),
    ("((4, 16), (1, (16, 2, 8), (24, 32), 1), (2, 16, 5))", "mlp width"),
    ("((4, 16), (1, (24, 2, 8), (24, 32), 1), (2, 16, 5))", "current embedding width"),
    ("((4, 16), (3, 16, 8), (2, 8, 5))", "cannot shrink"),
    ("((3, 16), (2, 16, 5))", "entry 0"),
    ("((4, 16), (7, 16, 8), (2, 16, 5))", "unknown block type"),
    ("((4, 16), (1, (16, 2, 8), (16, 32), 1))", "last entry"),
    ("__import__('os')", "tuple literal"),
])
def test_bad_definitions_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        parse_network_def(bad)


def test_image_size_must_fit_the_reductions():
    with pytest.raises(ValueError, match="multiple of"):
        ViTResNAS(TINY_DEF, img_size=70)  # 56 = 14 * 2 * 2


def test_removed_block_keeps_authors_indices_and_has_no_weights():
    with_removed = TINY_DEF.replace("(3, 16, 24)", "(1, (16, 4, 8), (16, 40), 0), (3, 16, 24)")
    a, b = tiny(), tiny(network_def=with_removed)
    assert count_params(a) == count_params(b)
    assert isinstance(b.blocks[2], ResidualSpatialReduction) and not any(k.startswith("blocks.1.") for k in b.state_dict())
    sd = {(f"blocks.{int(k.split('.')[1]) + 1}." + k.split(".", 2)[2]) if k.startswith("blocks.") and int(k.split(".")[1]) >= 1
           else k: v for k, v in a.state_dict().items()}
    load_state_dict_strict(b, sd)
    x = torch.randn(2, 3, 56, 56)
    torch.testing.assert_close(a.eval()(x), b.eval()(x))


def test_residual_spatial_reduction_matches_its_definition():
    torch.manual_seed(0)
    srd = ResidualSpatialReduction((4, 4), 6, 10).double()
    x = torch.randn(2, 1 + 16, 6, dtype=torch.float64)
    y = srd(x)
    n = F.layer_norm(x, (6,), srd.norm.weight, srd.norm.bias, 1e-6)
    grid = lambda t: t.transpose(1, 2).reshape(2, 6, 4, 4)  # noqa: E731
    patches = srd.patch_reduce(grid(n[:, 1:])).flatten(2).transpose(1, 2) + srd.pos_embed
    pooled = F.avg_pool2d(grid(x[:, 1:]), 2).flatten(2).transpose(1, 2)
    expect = torch.cat((srd.token_transform(n[:, :1]), patches), 1) + F.pad(torch.cat((x[:, :1], pooled), 1), (0, 4))
    torch.testing.assert_close(y, expect, rtol=1e-12, atol=1e-12)


def test_forward_backward_tiny_float64():
    m = tiny(drop_path_rate=0.1).double().train()
    out = m(torch.randn(2, 3, 56, 56, dtype=torch.float64))
    assert out.shape == (2, 5) and out.dtype == torch.float64
    out.sum().backward()
    unused = {"patch_head.weight", "patch_head.bias"}  # only the patch-logit output uses it
    for name, p in m.named_parameters():
        if name not in unused:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    cls, patches = m.forward_patch_logits(torch.randn(2, 3, 56, 56, dtype=torch.float64))
    assert cls.shape == (2, 5) and patches.shape == (2, 1, 5)  # 56 / 14 / 4 = a 1x1 last grid


def test_distillation_token_heads():
    m = tiny(distill_token=True, patch_output=False).eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        feats = m.forward_features(x)
        cls, dst = m.cls_head(feats[:, 0]), m.dst_head(feats[:, 1])
        torch.testing.assert_close(m(x), (cls + dst) / 2)
    m.set_distilled_training(True)
    out = m.train()(x)
    assert isinstance(out, tuple) and len(out) == 2
    with pytest.raises(ValueError):
        tiny(distill_token=True, patch_output=True)


def test_input_checks():
    m = archzoo.create_model("vit_resnas_tiny", network_def=TINY_DEF, img_size=56)
    with pytest.raises(InputError, match="56x56"):
        m(torch.randn(1, 3, 112, 112))
    with pytest.raises(InputError):
        m(torch.randn(1, 1, 56, 56))


def test_checkpoint_filter_resamples_position_embeddings():
    small = tiny()
    big = tiny(img_size=112)
    sd = {"module." + k: v for k, v in small.state_dict().items()}
    mapped = checkpoint_filter_fn({"model": sd}, big)
    load_state_dict_strict(big, mapped)
    assert big.pos_embed.shape == (1, 1 + 8 * 8, 16) and big.blocks[1].pos_embed.shape == (1, 16, 24)
    torch.testing.assert_close(big.pos_embed[:, :1], small.pos_embed[:, :1])  # class row kept
    expect = F.interpolate(small.pos_embed[:, 1:].reshape(1, 4, 4, 16).permute(0, 3, 1, 2), size=(8, 8),
                           mode="bicubic", align_corners=False).permute(0, 2, 3, 1).reshape(1, 64, 16)
    torch.testing.assert_close(big.pos_embed[:, 1:], expect)
    assert big.eval()(torch.randn(1, 3, 112, 112)).shape == (1, 5)


def test_features_and_intermediates():
    m = tiny().eval()
    x = torch.randn(2, 3, 56, 56)
    with torch.no_grad():
        final, inter = m.forward_intermediates(x)
        torch.testing.assert_close(final, m.forward_features(x))
        torch.testing.assert_close(m.forward_head(final), m(x))
    assert [tuple(t.shape) for t in inter] == [(2, 16, 4, 4), (2, 24, 2, 2), (2, 32, 1, 1)]
    f = timm.create_model("vit_resnas_tiny", network_def=TINY_DEF, img_size=56, features_only=True).eval()
    assert f.feature_info.channels() == [16, 24, 32] and f.feature_info.reduction() == [14, 28, 56]
    with torch.no_grad():
        assert [tuple(t.shape) for t in f(x)] == [(2, 16, 4, 4), (2, 24, 2, 2), (2, 32, 1, 1)]


def test_grad_checkpointing_and_classifier_reset(saved_tensors):
    m = tiny().eval()
    x = torch.randn(1, 3, 56, 56)
    saved_plain, ref = saved_tensors(lambda: m(x))
    m.set_grad_checkpointing(True)
    saved_ckpt, out = saved_tensors(lambda: m(x))
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the blocks really are checkpointed
    torch.testing.assert_close(out, ref)
    assert m.no_weight_decay() == {"tokens"}
    m.reset_classifier(3)
    assert m(x).shape == (1, 3) and m.patch_head.out_features == 3
    m.reset_classifier(0, "")
    assert m(x).shape == (1, 1 + 1, 32)  # class token + the 1x1 last grid pass through


def test_builds_on_meta_in_float64():
    with torch.device("meta"):
        m = timm.create_model("vit_resnas_medium").double()
    assert all(p.is_meta and p.dtype == torch.float64 for p in m.parameters())


@pytest.mark.slow
def test_full_size_tiny_forward():
    m = timm.create_model("vit_resnas_tiny").eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
