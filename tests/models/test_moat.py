"""MOAT (P3, arXiv 2210.01820): reference vectors (with every stored stage output), manifests through
the TF-name converter, exact counts, TF 'same' padding, the relative bias, window vs global attention."""
from __future__ import annotations

import json

import pytest
import timm
import torch
import torch.nn.functional as F

import archzoo
from archzoo.checkpoint import load_state_dict_strict
from archzoo.papers import card_for_model
from archzoo.reference import (
    adapters, check_reference, load_counts, load_manifest, manifest_problems, read_reference, relative_error,
)
from archzoo.validation import InputError
from archzoo.verify import count_flops, count_params
from archzoo.models.moat import MOAT, AvgPool2dSameExcludePad, RelPosAttention, checkpoint_filter_fn

# authors' variant names (manifests/counts) -> registered models
VARIANTS = {
    f"{base}{suffix}": f"{base.replace('moat', 'moat_')}{suffix}"
    for base in ("moat0", "moat1", "moat2", "moat3", "moat4", "tiny_moat0", "tiny_moat1", "tiny_moat2", "tiny_moat3")
    for suffix in ("", "_no_pe")
}
TINY = dict(stem_size=(8, 8), num_blocks=(1, 1, 2, 1), hidden_size=(8, 16, 16, 32), head_size=8,
            position_embedding_size=(None, None, 4, 2), num_classes=5)
REF_FILES = ("moat_a", "moat_nope_a", "moat_window_a")


def tiny(**kw) -> MOAT:
    torch.manual_seed(0)
    return timm.create_model("tiny_moat_0", **{**TINY, **kw})


def _perturb(m: torch.nn.Module) -> torch.nn.Module:
    # random norms/biases/tables so that nothing is an identity (zeros/ones) by initialisation
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.copy_(0.1 * torch.randn(mod.running_mean.shape, generator=g, dtype=mod.running_mean.dtype))
                mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g, dtype=mod.running_var.dtype) + 0.5)
    return m


@pytest.mark.parametrize("name", REF_FILES)
def test_reference_vector(ref_file, name):
    r = check_reference(ref_file(name))
    assert r.ok, r
    assert r.rel < 1e-5, r  # measured 2-4e-7: float32 round-off only


@pytest.mark.parametrize("name", REF_FILES)
def test_reference_stage_outputs(ref_file, name):
    """__aux__.stage1..5 are the authors' endpoints: stem output (before activation), then each stage."""
    ref = read_reference(ref_file(name))
    model = adapters()[ref.family].build(ref.config, ref.meta).eval()
    load_state_dict_strict(model, checkpoint_filter_fn(ref.state_dict, model))
    with torch.no_grad():
        inter = model.forward_intermediates(ref.input, intermediates_only=True)
    aux = sorted(k for k in ref.state_dict if k.startswith("__aux__.stage"))
    assert len(aux) == len(inter) == 5
    for k, got in zip(aux, inter):
        expected = ref.state_dict[k]
        assert tuple(got.shape) == tuple(expected.shape), k
        _, rel = relative_error(got, expected)
        assert rel <= 1e-5, (k, rel)


def test_reference_detects_flipped_relative_bias(ref_file):
    """The relative bias is indexed key - query; Swin's query - key sign must fail the vector."""
    ref = read_reference(ref_file("moat_a"))
    sd = {k: (v.flip(-1, -2) if k.endswith("relative_position_embedding:0") else v) for k, v in ref.state_dict.items()}
    model = adapters()["moat"].build(ref.config, ref.meta).eval()
    load_state_dict_strict(model, checkpoint_filter_fn(sd, model))
    with torch.no_grad():
        _, rel = relative_error(model(ref.input), ref.outputs["__output__"])
    assert rel > 1e-3


def test_tf1_checkpoint_names_and_ema(ref_file):
    """The released TF1 names (metadata name_map) and EMA copies convert like the Keras names."""
    ref = read_reference(ref_file("moat_window_a"))
    name_map = json.loads(ref.meta["name_map"])
    model = adapters()["moat_window"].build(ref.config, ref.meta).eval()
    keras = checkpoint_filter_fn(ref.state_dict, model)
    tf1 = {name_map[k]["tf1_checkpoint_name"]: v for k, v in ref.state_dict.items() if k in name_map}
    assert all(not k.endswith(":0") for k in tf1) and any(k.startswith("moat/stem/") for k in tf1)
    mapped = checkpoint_filter_fn(tf1, model)
    assert mapped.keys() == keras.keys()
    for k in keras:
        torch.testing.assert_close(mapped[k], keras[k], rtol=0, atol=0)
    # a TF1 checkpoint also holds EMA copies (and optimizer/step variables): raw by default, EMA on request
    with_ema = {**tf1, **{k + "/ExponentialMovingAverage": v + 1 for k, v in tf1.items()}, "global_step": torch.tensor(3)}
    raw = checkpoint_filter_fn(with_ema, model)
    ema = checkpoint_filter_fn(with_ema, model, prefer_ema=True)
    key = "stages.2.blocks.0.attention.relative_position_embedding"
    torch.testing.assert_close(raw[key], keras[key])
    torch.testing.assert_close(ema[key], keras[key] + 1)
    assert raw.keys() == keras.keys()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_manifest_and_exact_counts(ref_dir, variant):
    """Every name of the authors' full-size manifest converts (none dropped: numel is conserved) and
    the parameter count is the authors' exact trainable count."""
    keys = load_manifest("moat")[variant]
    with torch.device("meta"):
        m = timm.create_model(VARIANTS[variant])
    assert manifest_problems(m, keys) == []
    manifest_numel = sum(torch.Size(s).numel() for s in keys.values())
    state_numel = sum(t.numel() for k, t in m.state_dict().items() if not k.endswith("num_batches_tracked"))
    assert manifest_numel == state_numel
    assert count_params(m) == load_counts("moat")[variant]["params_1k_trainable"]


def test_macs_moat0(ref_dir):
    _, readme = card_for_model("moat_0")  # README "FLOPs" (multiply-adds)
    with torch.device("meta"):
        m = timm.create_model("moat_0")
    macs = count_flops(m, readme.img_size) / 2e9
    assert abs(macs - readme.flops_g) / readme.flops_g <= 0.03  # matmuls and convs only: 5.638


def test_tf_profiler_count_reproduces_readme_rounding():
    """The authors' count (TF1 profiler at batch 8, / 8 / 2) printed to one decimal, as in the README;
    matmul-only MACs would read 1.0 and 1.0. The PE - no-PE gap is the re-indexing einsums / 8."""
    from archzoo.tf_flops import count_tf_profiler_flops

    counts = {}
    for name in ("tiny_moat_0", "tiny_moat_0_no_pe"):
        _, readme = card_for_model(name)
        assert (readme.img_size, readme.flops_batch) == (256, 8)
        with torch.device("meta"):
            m = timm.create_model(name)
        counts[name] = count_tf_profiler_flops(m, 256, batch_size=8) / 2e9
        assert round(counts[name], 1) == readme.flops_g
        assert round(count_flops(m, 256) / 2e9, 1) == 1.0 != readme.flops_g  # matmuls only: not the README
    gap = counts["tiny_moat_0"] - counts["tiny_moat_0_no_pe"]
    # tiny-MOAT-0 stage 3: 16x16 map, 4 heads x 7 blocks; stage 4: 8x8, 8 heads x 2 blocks
    reindex = sum(2 * n * (h * h * (2 * h - 1) ** 2 + h ** 4 * (2 * h - 1)) * blocks
                  for n, h, blocks in ((4, 16, 7), (8, 8, 2))) / 8 / 2e9
    bias_add = sum(n * (h * h) ** 2 * blocks for n, h, blocks in ((4, 16, 7), (8, 8, 2))) / 2e9
    assert abs(gap - (reindex + bias_add)) < 1e-12


def test_window_equals_global_when_window_covers_map():
    g = _perturb(tiny()).double().eval()
    w = tiny(window_size=(None, None, (4, 4), (2, 2)))
    w.load_state_dict(g.state_dict())
    w = w.double().eval()
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)  # stage maps 4x4 and 2x2: one window each
    with torch.no_grad():
        torch.testing.assert_close(w(x), g(x), rtol=1e-12, atol=1e-12)
        # with smaller windows the attention really is local: the outputs differ
        w2 = tiny(window_size=(None, None, (2, 2), (1, 1)))
        w2.load_state_dict(g.state_dict())
        assert (w2.double().eval()(x) - g(x)).abs().max() > 1e-6


def test_window_attention_is_per_window_attention():
    """2x2 windows of a 4x4 map == global attention run on each window cut out by hand."""
    w = _perturb(tiny(window_size=(None, None, (2, 2), None))).double().eval()
    blk = w.stages[2].blocks[1]
    x = torch.randn(1, 16, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        y = blk.forward_mbconv(x)
        out = blk(x)
        t = blk.attention_norm(y.permute(0, 2, 3, 1))
        for i in (0, 2):
            for j in (0, 2):
                win = t[:, i:i + 2, j:j + 2].reshape(1, 4, 16)
                a = blk.attention(win, (2, 2)).reshape(1, 2, 2, 16).permute(0, 3, 1, 2)
                torch.testing.assert_close(out[:, :, i:i + 2, j:j + 2], y[:, :, i:i + 2, j:j + 2] + a)


def test_relative_bias_is_key_minus_query_and_resized():
    attn = RelPosAttention(16, head_size=8, rel_pos_size=(3, 3)).double()
    with torch.no_grad():
        attn.relative_position_embedding.copy_(torch.randn(2, 5, 5, dtype=torch.float64))
    table = attn.relative_position_embedding.detach()
    bias = attn.relative_position_bias(3, 3)
    for qi, qj, ki, kj in [(0, 0, 2, 1), (2, 1, 0, 0), (1, 2, 1, 0)]:
        torch.testing.assert_close(bias[:, qi * 3 + qj, ki * 3 + kj], table[:, ki - qi + 2, kj - qj + 2])
    # another window: the table is resized bilinearly (half-pixel centres) to [2h-1, 2w-1]
    big = attn.relative_position_bias(4, 2)
    resized = F.interpolate(table[None], size=(7, 3), mode="bilinear", align_corners=False)[0]
    assert big.shape == (2, 8, 8)
    torch.testing.assert_close(big[:, 0, 7], resized[:, 3 + 3, 1 + 1])  # query (0,0), key (3,1)


def test_tf_same_padding_stride2():
    m = _perturb(tiny()).eval()
    x = torch.randn(1, 3, 16, 16)
    conv = m.stem.conv_0
    with torch.no_grad():  # even map: pad 0 before, 1 after (not PyTorch's symmetric 1/1)
        torch.testing.assert_close(conv(x), F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2))
        x7 = torch.randn(1, 3, 7, 7)  # odd map: 1/1
        torch.testing.assert_close(conv(x7), F.conv2d(x7, conv.weight, conv.bias, stride=2, padding=1))


def test_avg_pool_same_excludes_padding():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = AvgPool2dSameExcludePad(3, 2)(x)  # pads 0 before / 1 after; the padded cells are not counted
    assert out.shape == (1, 1, 2, 2)
    torch.testing.assert_close(out[0, 0, 0, 0], x[0, 0, :3, :3].mean())
    torch.testing.assert_close(out[0, 0, 1, 1], x[0, 0, 2:, 2:].mean())  # 4 valid cells, not 9 with zeros
    torch.testing.assert_close(AvgPool2dSameExcludePad(2, 2)(x), F.avg_pool2d(x, 2, 2))


@pytest.mark.parametrize("size", [224, 256])
def test_forward_backward_tiny(size):
    m = tiny(drop_path_rate=0.2, window_size=(None, None, (7, 7), None) if size == 224 else None).train()
    x = torch.randn(2, 3, size, size)
    out = m(x)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    out.sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert m.stages[2].blocks[0].attention.relative_position_embedding.grad.abs().sum() > 0


def test_fused_and_explicit_attention_agree_float64():
    m = _perturb(tiny()).double().eval()
    x = torch.randn(2, 3, 48, 80, dtype=torch.float64)  # non-square: tables resized to 3x5 and 2x3 windows
    with torch.no_grad():
        fused = m(x)
        for mod in m.modules():
            if isinstance(mod, RelPosAttention):
                mod.fused_attn = False
        explicit = m(x)
    assert fused.dtype == torch.float64
    assert ((fused - explicit).norm() / explicit.norm()).item() < 1e-12


def test_features_and_head():
    m = tiny().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        final, inter = m.forward_intermediates(x)
        torch.testing.assert_close(m.forward_head(final), m(x))
    assert [tuple(t.shape[1:]) for t in inter] == [(8, 32, 48), (8, 16, 24), (16, 8, 12), (16, 4, 6), (32, 2, 3)]
    f = tiny(features_only=True, out_indices=(1, 3)).eval()
    assert f.feature_info.reduction() == [4, 16]
    assert [t.shape[1] for t in f(x)] == [8, 16]
    m.reset_classifier(0)
    assert m(x).shape == (1, 32)
    assert m.no_weight_decay() == {
        "stages.2.blocks.0.attention.relative_position_embedding",
        "stages.2.blocks.1.attention.relative_position_embedding",
        "stages.3.blocks.0.attention.relative_position_embedding",
    }


def test_input_checks():
    m = archzoo.create_model("tiny_moat_0", **{**TINY, "window_size": (None, None, (4, 4), (2, 2))}).eval()
    with pytest.raises(InputError, match="window"):
        m(torch.randn(1, 3, 48, 48))  # stage-3 map 3x3 is not divisible by the 4x4 window
    with pytest.raises(InputError):
        m(torch.randn(1, 3, 16, 16))  # smaller than the total stride
    g = archzoo.create_model("tiny_moat_0", **TINY).eval()
    assert g(torch.randn(1, 3, 48, 48)).shape == (1, 5)  # global attention takes any size


def test_builds_on_meta_and_float64():
    with torch.device("meta"):
        m = timm.create_model("moat_0_no_pe", window_size=(None, None, (14, 14), (7, 7)), pool_size=3)
    assert all(p.is_meta for p in m.parameters())
    assert m.stages[2].blocks[0].attention.relative_position_embedding is None
    d = tiny().double().eval()
    assert d(torch.randn(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
