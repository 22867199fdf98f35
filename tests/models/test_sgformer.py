"""SG-Former (P51, arXiv 2308.12216): exact counts, the authors' key/shape manifests, the reference
vector of the authors' code (float64: token sorting is sensitive to rounding), the significance map
and token reallocation, the timm interface, and the errors for sizes and depths it cannot take.

Full-size models are only built on the meta device; forwards run at widths 8-48 (the model only takes
the 224x224 input it is built for)."""
from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

import archzoo
from archzoo.models.sgformer import (
    HybridScaleAttention, ReallocationAttention, SGFormer, checkpoint_filter_fn, sincos_2d_embed,
)
from archzoo.papers import find_card
from archzoo.reference import check_reference, load_counts, load_manifest, manifest_problems, read_reference
from archzoo.validation import InputError
from archzoo.verify import count_flops, count_params

VARIANTS = ["sgformer_s", "sgformer_m", "sgformer_b"]
TINY = dict(embed_dims=(8, 16, 32, 48), num_heads=(2, 2, 4, 4), depths=(2, 2, 2, 1))


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return timm.create_model(name, **kwargs)


# ---- full size, meta device ----------------------------------------------------------------------
@pytest.mark.parametrize("name", VARIANTS)
def test_counts_and_manifest_of_the_authors_code(name, ref_dir):
    model = _meta(name)
    assert manifest_problems(model, load_manifest("sgformer")[name]) == []
    assert count_params(model) == load_counts("sgformer")[name]["params"]


def test_card_matches_the_counts(ref_dir):
    card, counts = find_card(51), load_counts("sgformer")
    assert card.status == "implemented" and card.families == ("sgformer",)
    assert [v.model for v in card.variants] == VARIANTS
    for v in card.variants:
        assert timm.is_model(v.model) and v.provider == "archzoo"
        assert v.reference_params == counts[v.model]["params"]


def _fvcore_extras(model: nn.Module, size: int = 224) -> int:
    """What fvcore counts beyond matmuls/convs here: 5 per normalised element (LayerNorm, GroupNorm)
    and 1 per output element of the global map's nearest upsampling."""
    total = [0]
    hooks = [m.register_forward_hook(lambda m, i, o: total.__setitem__(0, total[0] + 5 * i[0].numel()))
             for m in model.modules() if isinstance(m, (nn.LayerNorm, nn.GroupNorm))]
    # the upsampled global map has one value per token: as many as the (B, H*W) significance map
    hooks += [m.register_forward_hook(lambda m, i, o: total.__setitem__(0, total[0] + o[1][0].numel()))
              for m in model.modules() if isinstance(m, HybridScaleAttention)]
    with torch.no_grad():
        model(torch.empty(1, 3, size, size, device="meta"))
    for h in hooks:
        h.remove()
    return total[0]


@pytest.mark.parametrize("name", ["sgformer_s", pytest.param("sgformer_b", marks=pytest.mark.slow)])
def test_macs_are_fvcore_s_count_of_the_authors_code(name, ref_dir):
    """Our MACs (matmuls and convs) plus fvcore's norm and upsampling terms give fvcore's count of the
    authors' model to its printed precision."""
    model = _meta(name).eval()
    macs = count_flops(model, 224) / 2
    fvcore = load_counts("sgformer")[name]["gflops_fvcore"]
    assert (macs + _fvcore_extras(model)) / 1e9 == pytest.approx(fvcore, abs=5e-4)


# ---- the authors' function -----------------------------------------------------------------------
def test_reference_vector(ref_file):
    r = check_reference(ref_file("sgformer_a"))
    assert r.ok, r
    assert r.rel < 1e-13, r  # float64 round-off: the significance maps sort exactly as the authors'


def test_authors_checkpoint_wrappers_and_position_embedding_resampling(ref_file):
    ref = read_reference(ref_file("sgformer_a"))
    sd = {k: v.double() for k, v in ref.state_dict.items()}
    model = SGFormer(num_classes=10, qkv_bias=True, **TINY).double()
    mapped = checkpoint_filter_fn({"state_dict_ema": {"module." + k: v for k, v in sd.items()}}, model)
    model.load_state_dict(mapped, strict=True)
    assert torch.equal(model.stages[0].blocks[1].attn.merge[0].weight, sd["block1.1.attn.f1.weight"])
    assert torch.equal(model.stages[0].blocks[0].attn.q_local.weight, sd["block1.0.attn.q2.weight"])
    own = model.state_dict()
    assert list(checkpoint_filter_fn(own, model)) == list(own)  # archzoo's dicts pass through
    # a 224 checkpoint into a model built for 448: pos_embed resampled bicubically (56x56 -> 112x112)
    big = SGFormer(img_size=448, num_classes=10, qkv_bias=True, **TINY).double()
    pos = checkpoint_filter_fn(sd, big)["pos_embed"]
    grid = sd["pos_embed"].reshape(1, 56, 56, 8).permute(0, 3, 1, 2)
    expected = F.interpolate(grid.float(), size=(112, 112), mode="bicubic", align_corners=False)
    torch.testing.assert_close(pos, expected.permute(0, 2, 3, 1).reshape(1, -1, 8).double())
    big.load_state_dict(checkpoint_filter_fn(sd, big), strict=True)


def test_position_embedding_is_the_authors_2d_sincos():
    emb = sincos_2d_embed(8, 3, 5)  # (15, 8): two frequencies per axis
    row, col = divmod(7, 5)  # token 7 of a 3x5 grid
    omega = [1.0, 1 / 100.0]
    expected = [math.sin(col * o) for o in omega] + [math.cos(col * o) for o in omega]
    expected += [math.sin(row * o) for o in omega] + [math.cos(row * o) for o in omega]
    torch.testing.assert_close(emb[7], torch.tensor(expected, dtype=torch.float64))
    model = SGFormer(num_classes=0, **TINY)
    torch.testing.assert_close(model.pos_embed[0], sincos_2d_embed(8, 56, 56).float())


def test_significance_map_is_the_attention_each_token_receives():
    """Global half: each query's attention over the reduced keys sums to 1, and each reduced key is
    upsampled to sr x sr tokens; local half: each window's 49 values sum to 1. So the map sums to
    sr^2 + number of windows, and its column-major copy is the transpose."""
    torch.manual_seed(0)
    attn = HybridScaleAttention(8, 2, sr_ratio=4).double().eval()
    x = torch.randn(2, 28 * 56, 8, dtype=torch.float64)
    with torch.no_grad():
        out, (rows, cols) = attn(x, 28, 56)
    assert out.shape == x.shape
    torch.testing.assert_close(rows.sum(1), torch.full((2,), 4.0 ** 2 + 4 * 8, dtype=torch.float64))
    torch.testing.assert_close(cols, rows.reshape(2, 28, 56).transpose(1, 2).reshape(2, -1), rtol=0, atol=0)


def test_token_reallocation_merges_sorted_groups():
    """The least significant quarter is merged in groups of 49, the middle half in 14, the most
    significant quarter in 7 (reduction 4): with merge weights that pick one position per group, the
    keys come from known tokens."""
    torch.manual_seed(0)
    attn = ReallocationAttention(4, 2, sr_ratio=4).double()
    h = w = 14
    n = h * w
    assert attn.bounds(n, attn.parts) == [(0, 49, 1), (49, 147, 7), (147, 196, 7)]
    with torch.no_grad():
        for lin in attn.merge:
            lin.weight.zero_(), lin.bias.zero_()
            lin.weight[0, 0] = 1.0  # each group -> its first (least significant) token
    x = torch.randn(1, n, 4, dtype=torch.float64)
    significance = torch.randperm(n).double()[None]
    order = torch.argsort(significance, dim=1)[0]
    merged = attn._merge(x, order[None])
    starts = [0] + [49 + 14 * k for k in range(7)] + [147 + 7 * k for k in range(7)]
    torch.testing.assert_close(merged[0], x[0, order[starts]], rtol=0, atol=0)
    with pytest.raises(ValueError, match="groups of"):
        attn.bounds(7 * 7, attn.parts)


# ---- tiny width: interface ------------------------------------------------------------------------
def test_forward_backward_tiny():
    torch.manual_seed(0)
    model = SGFormer(num_classes=7, drop_path_rate=0.1, **TINY)
    x = torch.randn(2, 3, 224, 224)
    out = model(x)
    assert out.shape == (2, 7)
    out.square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_features_intermediates_pruning_and_classifier():
    torch.manual_seed(0)
    model = SGFormer(num_classes=5, **TINY).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        assert [tuple(t.shape) for t in inter] == [(1, 8, 56, 56), (1, 16, 28, 28), (1, 32, 14, 14), (1, 48, 7, 7)]
        torch.testing.assert_close(final, model.forward_features(x))
        logits = model(x)
        torch.testing.assert_close(model.forward_head(final), logits)
        assert model.forward_head(final, pre_logits=True).shape == (1, 48)
        feats = timm.create_model("sgformer_s", features_only=True, out_indices=(1, 3), **TINY).eval()
        assert feats.feature_info.reduction() == [8, 32] and feats.feature_info.channels() == [16, 48]
        assert [tuple(o.shape) for o in feats(x)] == [(1, 16, 28, 28), (1, 48, 7, 7)]
        model.reset_classifier(3)
        assert model(x).shape == (1, 3) and model.get_classifier().out_features == 3
        assert model.prune_intermediate_layers([1]) == [1] and len(model.stages) == 2
        assert model(x).shape == (1, 16, 28, 28)  # no head, no pooling (global_pool "")


def test_grad_checkpointing_gives_the_same_gradients(saved_tensors):
    torch.manual_seed(0)
    model = SGFormer(num_classes=3, **TINY)
    x = torch.randn(1, 3, 224, 224)
    saved_plain, out = saved_tensors(lambda: model(x))
    out.sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.set_grad_checkpointing(True)
    saved_ckpt, out = saved_tensors(lambda: model(x))
    assert saved_ckpt < saved_plain / 2, (saved_ckpt, saved_plain)  # the blocks really are checkpointed
    out.sum().backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], msg=n)


def test_builds_in_float64_and_on_meta():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = timm.create_model("sgformer_s", num_classes=4, **TINY)
    finally:
        torch.set_default_dtype(old)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert model(torch.randn(1, 3, 224, 224, dtype=torch.float64)).dtype == torch.float64
    assert _meta("sgformer_b", img_size=448).pos_embed.shape == (1, 112 * 112, 96)


# ---- errors --------------------------------------------------------------------------------------
def test_clear_errors_for_inputs_it_cannot_take():
    model = archzoo.create_model("sgformer_s", num_classes=3, **TINY)
    with pytest.raises(InputError, match="built for, 224x224.*got 256x256"):
        model(torch.randn(1, 3, 256, 256))
    with pytest.raises(InputError, match="got 448x224"):
        model(torch.randn(1, 3, 448, 224))
    with pytest.raises(InputError, match="at least 224x224"):
        model(torch.randn(1, 3, 112, 112))
    with pytest.raises(InputError, match="3 input channel"):
        model(torch.randn(1, 1, 224, 224))
    with pytest.raises(InputError, match="4-D"):
        model(torch.randn(3, 224, 224))
    bare = SGFormer(num_classes=3, **TINY)  # the model's own check, without archzoo's hook
    with pytest.raises(InputError, match="takes only the input size it was built for"):
        bare.forward_features(torch.randn(1, 3, 232, 232))


def test_clear_errors_for_configurations_it_cannot_build():
    with pytest.raises(ValueError, match="stage 1 ends with a hybrid-scale block .depth 1 is odd"):
        SGFormer(embed_dims=(8, 16, 32, 48), num_heads=(2, 2, 4, 4), depths=(1, 2, 2, 1))
    with pytest.raises(ValueError, match="stage 2 ends with a hybrid-scale block .depth 3 is odd"):
        SGFormer(embed_dims=(8, 16, 32, 48), num_heads=(2, 2, 4, 4), depths=(2, 3, 2, 1))
    with pytest.raises(ValueError, match="7x7 windows"):
        SGFormer(img_size=256, **TINY)
    with pytest.raises(ValueError, match="stage 3 7x7 = 49 tokens.*token-reallocation groups"):
        SGFormer(img_size=112, **TINY)
    with pytest.raises(ValueError, match="last stage and has a spatial reduction"):
        SGFormer(embed_dims=(8, 16, 32, 48), num_heads=(2, 2, 4, 4), depths=(2, 2, 2, 2), sr_ratios=(8, 4, 2, 2))
    with pytest.raises(ValueError, match="num_heads 3 is odd"):
        SGFormer(embed_dims=(8, 18, 32, 48), num_heads=(2, 3, 4, 4), depths=(2, 2, 2, 1))
    # what the authors' code runs, archzoo builds: an odd stage 3 (its map is dropped by stage 4),
    # and with it 112x112 (stage 3 then has no reallocation block); multiples of 224
    SGFormer(embed_dims=(8, 16, 32, 48), num_heads=(2, 2, 4, 4), depths=(2, 2, 1, 1), img_size=112)
    with torch.device("meta"):
        SGFormer(img_size=448, **TINY)
        SGFormer(img_size=(224, 448), **TINY)


@pytest.mark.slow
def test_full_size_forward():
    model = timm.create_model("sgformer_s").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()
