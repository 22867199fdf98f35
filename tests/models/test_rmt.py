"""RMT (P15, arXiv 2309.11523): exact counts and key/shape manifests of the authors' code, reference
vectors (plain and token-labelling), Manhattan self-attention against a naive re-derivation at
several sizes, the timm interface and input errors.

Full-size models are only built on the meta device; forwards run at widths 8-32."""
from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import nn

import archzoo
from archzoo.models.rmt import RMT, ManhattanRetention, RetentionRelPos, checkpoint_filter_fn
from archzoo.papers import find_card
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems, read_reference
from archzoo.validation import InputError
from archzoo.verify import count_params

# the authors' constructor names -> ours
PLAIN = {"RMT_T3": "rmt_t", "RMT_S": "rmt_s", "RMT_M2": "rmt_b", "RMT_L6": "rmt_l"}
TOKEN_LABEL = {"RMT_S": "rmt_s_tl", "RMT_M2": "rmt_b_tl", "RMT_L6": "rmt_l_tl"}
COUNT_KEYS = {"rmt_t": "RMT-T", "rmt_s": "RMT-S", "rmt_b": "RMT-B", "rmt_l": "RMT-L",
              "rmt_s_tl": "RMT-S*", "rmt_b_tl": "RMT-B*", "rmt_l_tl": "RMT-L*"}
TINY = dict(embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(2, 2, 2, 4), projection=16,
            layer_scales=(False, False, True, True), decomposed=(True, True, True, False), num_classes=5)


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, **kwargs)


# ---- full size, meta device ----------------------------------------------------------------------
@pytest.mark.parametrize("family,authors,name", [("rmt", a, n) for a, n in PLAIN.items()]
                         + [("rmt_tl", a, n) for a, n in TOKEN_LABEL.items()])
def test_counts_and_manifest_of_the_authors_code(family, authors, name, ref_dir):
    model = _meta(name)
    assert manifest_problems(model, load_manifest(family)[authors]) == []
    counts = load_counts(family)[COUNT_KEYS[name]]
    assert counts["fn"] == authors
    assert count_params(model) == counts["params"]


def test_manifests_cover_every_variant(ref_dir):
    assert set(load_manifest("rmt")) == set(PLAIN)
    assert set(load_manifest("rmt_tl")) == set(TOKEN_LABEL)


def test_card():
    card = find_card(15)
    assert card.slug == "rmt" and card.arxiv == "2309.11523" and card.repo == "qhfan/RMT"
    assert card.title == "RMT: Retentive Networks Meet Vision Transformers"
    models = {v.model for v in card.variants}
    assert models == set(PLAIN.values()) | set(TOKEN_LABEL.values())
    assert all(v.reference_params for v in card.variants)


# ---- the authors' code ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rmt_a", "rmt_tl_a"])
def test_reference_vectors(ref_file, name):
    r = check_reference(ref_file(name))
    assert r.ok, r
    assert r.rel < 1e-12  # float64 end to end: far below the 1e-9 bar


def test_reference_weights_drive_the_output(ref_file):
    """The check can fail: a perturbed decay buffer (loaded from the authors' state dict) moves the
    output far beyond the tolerance."""
    ref = read_reference(ref_file("rmt_a"))
    from archzoo.models.rmt import _from_authors_config

    model = _from_authors_config(ref.config).double().eval()
    sd = {k: v.double() for k, v in ref.state_dict.items()}
    sd["layers.0.Relpos.decay"] = sd["layers.0.Relpos.decay"] * 0.5
    model.load_state_dict(checkpoint_filter_fn(sd, model))
    with torch.no_grad():
        out = model(ref.input.double())
    rel = ((out - ref.outputs["__output__"]).norm() / ref.outputs["__output__"].norm()).item()
    assert rel > 1e-6


# ---- Manhattan self-attention, re-derived naively --------------------------------------------------
def _rope(x: torch.Tensor, pos: torch.Tensor, key_dim: int) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) by pos * 10000^(-i / (key_dim/2 - 1)) (complex product)."""
    theta = 10000.0 ** (-torch.arange(key_dim // 2, dtype=torch.float64) / (key_dim // 2 - 1))
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], key_dim // 2, 2).contiguous())
    z = z * torch.polar(torch.ones_like(theta), pos[..., None] * theta)
    return torch.view_as_real(z).flatten(-2)


def _naive_masa(mod: ManhattanRetention, decay: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Loop form of MaSA for one image (h, w, c): per head, per token, straight from the formulas."""
    h, w, c = x.shape
    n, d = mod.num_heads, mod.key_dim
    q = mod.q_proj(x).reshape(h, w, n, d)
    k = mod.k_proj(x).reshape(h, w, n, d) * d ** -0.5
    v = mod.v_proj(x).reshape(h, w, n, d)
    raster = torch.arange(h * w, dtype=torch.float64).reshape(h, w)
    q = _rope(q.permute(2, 0, 1, 3), raster, d)  # (n h w d)
    k = _rope(k.permute(2, 0, 1, 3), raster, d)
    v = v.permute(2, 0, 1, 3)
    out = torch.zeros(n, h, w, d, dtype=x.dtype)
    for head in range(n):
        g = decay[head]
        for y in range(h):
            for xx in range(w):
                if mod.decomposed:
                    # the H pass mixes, in column xx, the rows' W-pass results
                    col = []
                    for y2 in range(h):
                        logits = torch.stack([q[head, y2, xx] @ k[head, y2, x2] + g * abs(xx - x2) for x2 in range(w)])
                        col.append(torch.softmax(logits, 0) @ v[head, y2])
                    logits = torch.stack([q[head, y, xx] @ k[head, y2, xx] + g * abs(y - y2) for y2 in range(h)])
                    out[head, y, xx] = torch.softmax(logits, 0) @ torch.stack(col)
                else:
                    logits = torch.stack([q[head, y, xx] @ k[head, y2, x2] + g * (abs(y - y2) + abs(xx - x2))
                                          for y2 in range(h) for x2 in range(w)])
                    out[head, y, xx] = torch.softmax(logits, 0) @ v[head].reshape(h * w, d)
    out = out.permute(1, 2, 0, 3).reshape(h, w, c)
    lepe = mod.lepe(mod.v_proj(x).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    return mod.out_proj(out + lepe)


@pytest.mark.parametrize("decomposed", [True, False])
@pytest.mark.parametrize("hw", [(3, 4), (5, 2)])
def test_masa_matches_naive_form_at_any_size(decomposed, hw):
    torch.manual_seed(0)
    dim, heads = 8, 2
    mod = ManhattanRetention(dim, heads, decomposed).double()
    rel = RetentionRelPos(dim, heads, init_value=1.5, heads_range=3).double()
    x = torch.randn(1, *hw, dim, dtype=torch.float64)
    with torch.no_grad():
        got = mod(x, rel(*hw, decomposed))[0]
        want = _naive_masa(mod, rel.decay, x[0])
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_decay_and_angle_buffers():
    rel = RetentionRelPos(64, 4, init_value=2, heads_range=4)
    assert rel.angle.dtype == rel.decay.dtype == torch.float32  # as the authors' buffers
    want = [math.log(1 - 2 ** (-2 - 4 * hd / 4)) for hd in range(4)]
    torch.testing.assert_close(rel.decay.double(), torch.tensor(want, dtype=torch.float64), rtol=1e-6, atol=0)
    assert torch.equal(rel.angle[0::2], rel.angle[1::2]) and rel.angle[0] == 1.0
    assert set(dict(rel.named_buffers())) == {"angle", "decay"}
    assert {"angle", "decay"} <= set(rel.state_dict())  # persistent: they are in the checkpoints


def test_masks_follow_the_input_size():
    rel = RetentionRelPos(16, 2, init_value=2, heads_range=4).double()
    for h, w in [(2, 3), (4, 4), (7, 5)]:
        (sin, cos), m2 = rel(h, w, decomposed=False)
        _, (mh, mw) = rel(h, w, decomposed=True)
        assert sin.shape == cos.shape == (h, w, 8) and m2.shape == (2, h * w, h * w)
        assert mh.shape == (2, h, h) and mw.shape == (2, w, w)
        for i in range(h * w):
            for j in range(h * w):
                dist = abs(i // w - j // w) + abs(i % w - j % w)
                torch.testing.assert_close(m2[:, i, j], rel.decay * dist)
        torch.testing.assert_close(sin[1 if h > 1 else 0, 0], torch.sin(rel.angle * (w if h > 1 else 0)))


# ---- timm interface, tiny widths -------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rmt_t", "rmt_b_tl"])
def test_forward_backward_two_sizes(name):
    torch.manual_seed(0)
    model = archzoo.create_model(name, **TINY).train()
    for hw in [(64, 64), (96, 64)]:
        model.zero_grad()
        out = model(torch.randn(2, 3, *hw))
        assert out.shape == (2, 5) and torch.isfinite(out).all()
        out.square().mean().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert missing == []


def test_token_label_head():
    torch.manual_seed(0)
    model = timm.create_model("rmt_s_tl", **TINY).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        out = model(x)
        cls = model.head(model.forward_head(feats, pre_logits=True))
        aux = model.aux_head(feats.flatten(2).transpose(1, 2))
    torch.testing.assert_close(out, cls + 0.5 * aux.max(1)[0])
    model.train()
    model.return_dense = True
    logits, dense = model(x)
    assert logits.shape == (2, 5) and dense.shape == (2, 4, 5)  # 64 / 32 = 2 -> 4 tokens


def test_head_interface():
    model = timm.create_model("rmt_t", **TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    feats = model.forward_features(x)
    assert feats.shape == (1, 32, 2, 2) and model.num_features == 32
    assert model.forward_head(feats, pre_logits=True).shape == (1, 16) and model.head_hidden_size == 16
    assert model.get_classifier() is model.head
    model.reset_classifier(7)
    assert model(x).shape == (1, 7)
    model.reset_classifier(0)
    assert model(x).shape == (1, 16)
    final, inter = model.forward_intermediates(x)
    torch.testing.assert_close(final, feats)
    assert [t.shape[1:] for t in inter] == [(8, 16, 16), (16, 8, 8), (24, 4, 4), (32, 2, 2)]


def test_features_only():
    model = timm.create_model("rmt_t", features_only=True, out_indices=(1, 3), **TINY)
    outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 16, 8, 12), (1, 32, 2, 3)]
    assert model.feature_info.channels() == [16, 32] and model.feature_info.reduction() == [8, 32]


def test_grad_checkpointing_same_output(saved_tensors):
    torch.manual_seed(0)
    model = timm.create_model("rmt_t", **TINY).eval()
    x = torch.randn(1, 3, 64, 64)
    saved_plain, a = saved_tensors(lambda: model(x))
    model.set_grad_checkpointing(True)
    saved_ckpt, b = saved_tensors(lambda: model(x))
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the blocks really are checkpointed
    torch.testing.assert_close(a, b)


def test_float64_and_meta_builds():
    model = timm.create_model("rmt_l_tl", **TINY).double().eval()
    assert model(torch.randn(1, 3, 64, 64, dtype=torch.float64)).dtype == torch.float64
    meta = _meta("rmt_l_tl", **TINY)  # full-size meta builds: the manifest tests
    assert meta.stages[3].rel_pos.decay.is_meta


def test_filter_passes_converted_dicts_through():
    model = timm.create_model("rmt_b", **TINY)
    sd = model.state_dict()
    assert checkpoint_filter_fn(sd, model) is sd
    model.load_state_dict(checkpoint_filter_fn(sd, model))
    assert model.stages[2].blocks[0].ls1.gamma.shape == (24,)


def test_input_errors():
    model = archzoo.create_model("rmt_t", **TINY)
    with pytest.raises(InputError):
        model(torch.randn(1, 3, 16, 16))
    with pytest.raises(InputError):
        model(torch.randn(1, 1, 64, 64))
