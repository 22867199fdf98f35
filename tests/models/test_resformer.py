"""ResFormer (P37, arXiv 2212.00776): reference vector, exact counts of the authors' code, the global
and local positional embeddings, one set of weights at many resolutions."""
from __future__ import annotations

import math

import pytest
import timm
import torch

import archzoo
from archzoo.papers import card_for_model
from archzoo.reference import check_reference
from archzoo.validation import InputError
from archzoo.verify import build_on_meta, count_flops, count_params
from archzoo.models.resformer import ResFormer, checkpoint_filter_fn, sincos_table

VARIANTS = ["resformer_tiny_patch16", "resformer_small_patch16", "resformer_base_patch16"]
TINY = dict(embed_dim=32, depth=2, num_heads=2, num_classes=5)


def tiny(name: str = "resformer_tiny_patch16", perturb: float = 0.02, **kw) -> ResFormer:
    torch.manual_seed(0)
    m = timm.create_model(name, **{**TINY, **kw})
    with torch.no_grad():  # the zero-initialised head and local embedding would hide errors
        for p in m.parameters():
            p.add_(perturb * torch.randn_like(p))
    return m


def test_reference_vector(ref_file):
    r = check_reference(ref_file("resformer_a"))
    assert r.ok, r
    assert r.rel < 1e-6, r  # measured 1.4e-7 (float32 round-off)


@pytest.mark.parametrize("name", VARIANTS)
def test_exact_param_count(name):
    # the card's reference_params: counted by building the authors' resformer_*_patch16 (1000 classes)
    m = build_on_meta(name)
    assert count_params(m) == card_for_model(name)[1].reference_params


@pytest.mark.parametrize("size", [128, 224])
def test_macs_are_deit_s_plus_the_positional_convs(size):
    """ResFormer-S is DeiT-S (timm's vit_small_patch16) plus depthwise 3x3 convs: the global embedding
    once on the g x g grid, and the local one on V in each of the 12 blocks (all heads: 384 channels)."""
    ours = count_flops(build_on_meta("resformer_small_patch16"), size)
    deit = count_flops(build_on_meta("vit_small_patch16_224", img_size=size), size)
    g = size // 16
    assert ours == deit + 2 * (1 + 12) * 9 * 384 * g * g


def test_sincos_table_is_the_normalised_detr_embedding():
    h, w, dim = 3, 5, 16
    t = sincos_table(h, w, dim)
    assert t.shape == (1, dim, h, w) and t.dtype == torch.float32
    half, eps, scale = dim // 2, 1e-6, 2 * math.pi
    for c in range(dim):
        k = c % half
        freq = 10000 ** (2 * (k // 2) / half)
        for i in range(h):
            for j in range(w):
                pos = ((i + 1) / (h + eps) if c < half else (j + 1) / (w + eps)) * scale
                want = math.sin(pos / freq) if k % 2 == 0 else math.cos(pos / freq)
                assert abs(t[0, c, i, j].item() - want) < 1e-6, (c, i, j)


def test_same_weights_at_96_160_384():
    m = tiny().eval()
    for size in (96, 160, 384):
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            feats = m.forward_features(x)
            out = m(x)
        g = size // 16
        assert feats.shape == (2, 1 + g * g, 32)
        assert out.shape == (2, 5) and torch.isfinite(out).all()
        # the global embedding is the one of this grid: recompute it by hand
        with torch.no_grad():
            pos = m.pos_embed.embed_layer(sincos_table(g, g, 32)).flatten(2).transpose(1, 2)
            tokens = m.patch_embed(x).flatten(2).transpose(1, 2)
            got = m.pos_embed(torch.cat((m.cls_token.expand(2, -1, -1), tokens), 1), (g, g)) - \
                torch.cat((m.cls_token.expand(2, -1, -1), tokens), 1)
        torch.testing.assert_close(got[:, 1:], pos.expand(2, -1, -1))
        assert got[:, 0].abs().max() == 0  # class token: no positional embedding


def test_rectangular_inputs_and_float64():
    m = tiny().eval()
    x = torch.randn(1, 3, 64, 112)
    with torch.no_grad():
        y32 = m(x)
        y64 = m.double()(x.double())  # the authors' code fails in float64 (its tables are float32)
    assert y64.dtype == torch.float64
    assert ((y64 - y32.double()).norm() / y64.norm()).item() < 1e-5


def test_local_positional_embedding_is_a_shared_depthwise_conv_of_v():
    m = tiny().double().eval()
    attn, (h, w), n = m.blocks[0].attn, (3, 4), 1 + 12
    x = torch.randn(2, n, 32, dtype=torch.float64)
    q, k, v = attn.qkv(x).reshape(2, n, 3, 2, 16).permute(2, 0, 3, 1, 4)
    a = ((q @ k.transpose(-2, -1)) * 16 ** -0.5).softmax(-1) @ v
    lpe = torch.zeros_like(v)
    for head in range(2):  # the same conv for every head, on the patch part of V only
        grid = v[:, head, 1:].transpose(1, 2).reshape(2, 16, h, w)
        lpe[:, head, 1:] = attn.get_v(grid).flatten(2).transpose(1, 2)
    expect = attn.proj((a + lpe).transpose(1, 2).reshape(2, n, 32))
    torch.testing.assert_close(attn(x, (h, w)), expect, rtol=1e-10, atol=1e-12)


def test_initialisation_and_no_weight_decay():
    m = timm.create_model("resformer_tiny_patch16", **TINY)
    assert all(b.attn.get_v.weight.abs().sum() == 0 for b in m.blocks)  # local embedding starts at zero
    assert m.head.weight.abs().sum() == 0
    nwd = m.no_weight_decay()
    assert {"cls_token", "pos_embed.embed_layer.weight", "blocks.1.attn.get_v.bias"} <= nwd
    assert not any("qkv" in n for n in nwd)


def test_forward_backward_and_grad_checkpointing(saved_tensors):
    m = tiny(drop_path_rate=0.1).train()
    out = m(torch.randn(2, 3, 48, 48))
    out.sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    m.eval()
    x = torch.randn(1, 3, 48, 48)
    saved_plain, ref = saved_tensors(lambda: m(x))
    m.set_grad_checkpointing(True)
    saved_ckpt, out = saved_tensors(lambda: m(x))
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the blocks really are checkpointed
    torch.testing.assert_close(out, ref)


def test_fused_and_explicit_attention_agree():
    m = tiny().double().eval()
    x = torch.randn(2, 3, 48, 64, dtype=torch.float64)
    with torch.no_grad():
        fused = m(x)
        for b in m.blocks:
            b.attn.fused_attn = False
        explicit = m(x)
    assert ((fused - explicit).norm() / explicit.norm()).item() < 1e-12


def test_pools_representation_and_reset():
    m = tiny(representation_size=24).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        feats = m.forward_features(x)
        pre = m.forward_head(feats, pre_logits=True)
        torch.testing.assert_close(pre, torch.tanh(m.pre_logits.fc(feats[:, 0])))
        m.reset_classifier(3, "avg")
        torch.testing.assert_close(m(x), m.head(m.pre_logits(feats[:, 1:].mean(1))))
    with pytest.raises(ValueError):
        m.reset_classifier(3, "max")


def test_features_and_intermediates_at_any_size():
    m = tiny().eval()
    x = torch.randn(2, 3, 80, 48)
    with torch.no_grad():
        final, inter = m.forward_intermediates(x)
        torch.testing.assert_close(m.forward_head(final), m(x))
    assert [tuple(t.shape) for t in inter] == [(2, 32, 5, 3)] * 2
    f = timm.create_model("resformer_tiny_patch16", features_only=True, out_indices=(1,), **TINY).eval()
    with torch.no_grad():
        assert tuple(f(torch.randn(1, 3, 64, 64))[0].shape) == (1, 32, 4, 4)


def test_checkpoint_filter_strips_wrappers():
    m = tiny()
    sd = {"module." + k: v for k, v in m.state_dict().items()}
    mapped = checkpoint_filter_fn({"model": sd}, m)
    assert mapped.keys() == m.state_dict().keys()


def test_input_checks_and_embed_dim():
    m = archzoo.create_model("resformer_tiny_patch16", **TINY)
    with pytest.raises(InputError):
        m(torch.randn(1, 3, 8, 8))  # smaller than one 16x16 patch
    with pytest.raises(ValueError, match="divisible by 4"):
        ResFormer(embed_dim=30, num_heads=2, depth=1)


def test_builds_on_meta_in_float64():
    with torch.device("meta"):
        m = timm.create_model("resformer_base_patch16").double()
    assert all(p.is_meta and p.dtype == torch.float64 for p in m.parameters())
    x = torch.empty(1, 3, 160, 160, device="meta", dtype=torch.float64)
    assert count_flops(m, 160, inputs=x) > 0  # the table is built on the meta device too


@pytest.mark.slow
def test_full_size_tiny_forward():
    m = timm.create_model("resformer_tiny_patch16").eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
