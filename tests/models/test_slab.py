"""SLAB (P48, arXiv 2405.11582): reference vectors of the four backbones, exact counts of the authors'
code, the PRepBN schedule in training (and resumed from a checkpoint), the deploy fusion (float64:
equal to eval, no norm left) and the timm interface.

Full-size models are built on the meta device only; forwards run at widths 8-24 on 28-112 px inputs."""
from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import archzoo
from archzoo.checkpoint import load_checkpoint, save_safetensors
from archzoo.models._slab_layers import PRepBN, RepBN, TokenAffine, _linear_attention_core, prepbn_modules
from archzoo.papers import find_card
from archzoo.reference import check_reference, read_reference
from archzoo.validation import InputError
from archzoo.verify import count_params

VARIANTS = ["slab_swin_t", "slab_swin_s", "slab_swin_b", "slab_deit_t", "slab_deit_s",
            "slab_pvt_t", "slab_pvt_s", "slab_pvt_m", "slab_cswin_t", "slab_cswin_s"]

# tiny configurations that keep every block kind: L and S attention, shifted windows with and without
# the mask, spatial reduction in L and S stages, two-branch and one-branch stripes
TINY = {
    "slab_swin_t": dict(img_size=56, patch_size=2, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 2), window_size=7,
                        attn_type="LSS", drop_path_rate=0.0),
    "slab_deit_t": dict(img_size=28, patch_size=2, embed_dim=16, depth=2, num_heads=2),
    "slab_pvt_t": dict(img_size=64, embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1),
                       la_sr_ratios="2111", sr_ratios=(4, 2, 2, 1), attn_type="LLSS", mlp_ratios=(2, 2, 2, 2)),
    "slab_cswin_t": dict(img_size=64, embed_dim=8, depth=(1, 2, 2, 1), split_size=(1, 2, 2, 2), la_split_size="4-8-4-2",
                         num_heads=(2, 2, 4, 4), attn_type="LLSS", drop_path_rate=0.0),
}


def tiny(name: str, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    return timm.create_model(name, **{"num_classes": 5, **TINY[name], **kw})


def _randomise(model: nn.Module, seed: int = 1) -> nn.Module:
    """Perturb every parameter and BatchNorm statistic (alpha, zero positional encodings, BN stats
    all matter then), as the reference files do."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g, dtype=m.running_mean.dtype))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g, dtype=m.running_var.dtype))
    return model


def _input(name: str, batch: int = 2, dtype=torch.float32, seed: int = 0) -> torch.Tensor:
    s = TINY[name]["img_size"]
    return torch.randn(batch, 3, s, s, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# ---- the authors' function and counts -----------------------------------------------------------
@pytest.mark.parametrize("family,bound", [("swin", 1e-5), ("deit", 1e-5), ("pvt", 1e-12), ("cswin", 1e-12)])
def test_reference_vector(ref_file, family, bound):
    r = check_reference(ref_file(f"slab_{family}_a"))
    assert r.ok, r
    assert r.rel < bound, r  # measured 1.6e-7, 1.4e-7 (float32 files), 2e-16, 5e-16 (float64)


def test_reference_files_carry_the_schedule_buffers(ref_file):
    """The authors' state dict holds PRepBN's int64 schedule buffers; ours has the same keys."""
    ref = read_reference(ref_file("slab_deit_a"))
    from archzoo.models.slab_deit import SlabVisionTransformer, checkpoint_filter_fn

    model = SlabVisionTransformer(**ref.config)
    mapped = checkpoint_filter_fn(ref.state_dict, model)
    assert set(mapped) == set(model.state_dict())
    assert mapped["blocks.0.norm1.total_step"].dtype == torch.int64
    assert int(mapped["blocks.0.norm1.total_step"]) == 60000


@pytest.mark.parametrize("name", VARIANTS)
def test_exact_param_count(name):
    # the card's reference_params: the authors' code (xinghaochen/SLAB @ f58db00: their model functions
    # and cfgs/slab_*.yaml) counted by building it; the M figures are these rounded
    with torch.device("meta"):
        m = timm.create_model(name)
    card = {v.model: v for v in find_card("slab").variants}
    assert count_params(m) == card[name].reference_params


def test_card_lists_every_variant():
    card = find_card("slab")
    assert card.status == "implemented"
    assert {v.model for v in card.variants} == set(VARIANTS)
    assert set(card.families) == {"slab_swin", "slab_deit", "slab_pvt", "slab_cswin"}


def test_window_rules_of_swin():
    """L blocks take the stage-wide window (clipped), S blocks window 7; no shift when the window
    covers the stage; only shifted S blocks keep a mask."""
    with torch.device("meta"):
        m = timm.create_model("slab_swin_t")
    got = [[(b.attn_type, b.window_size, b.shift_size) for b in layer.blocks] for layer in m.layers]
    assert got[0] == [("L", 56, 0)] * 2
    assert got[1] == [("L", 28, 0)] * 2
    assert got[2] == [("S", 7, 0), ("S", 7, 3)] * 3
    assert got[3] == [("S", 7, 0)] * 2
    assert m.layers[2].blocks[1].attn_mask is not None and m.layers[2].blocks[0].attn_mask is None
    assert m.layers[0].blocks[0].attn.positional_encoding.shape == (1, 56 * 56, 96)


def test_deit_needs_a_14x14_token_grid():
    with pytest.raises(ValueError, match="14x14"):
        timm.create_model("slab_deit_t", img_size=256)


def test_linear_attention_orders_agree():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.rand(3, n, 4, generator=g, dtype=torch.float64) for n in (5, 5, 5))
    direct = (q @ k.transpose(1, 2)) @ v / (q @ k.sum(1).unsqueeze(-1) + 1e-6)
    assert _rel(_linear_attention_core(q, k, v), direct) < 1e-14  # 5 tokens: the (QK^T)V order
    q, k, v = (torch.rand(3, 40, 2, generator=g, dtype=torch.float64) for _ in range(3))
    direct = (q @ k.transpose(1, 2)) @ v / (q @ k.sum(1).unsqueeze(-1) + 1e-6)
    assert _rel(_linear_attention_core(q, k, v), direct) < 1e-14  # 40 tokens: the Q(K^TV) order


# ---- PRepBN schedule ------------------------------------------------------------------------------
def _expected_lam(calls_done: int, warm: int, step: int, r0: float = 1.0) -> float:
    """LayerNorm weight of forward number ``calls_done`` (0-based): 1 in warm-up, then linear decay."""
    if calls_done < warm:
        return 1.0
    return r0 * max(step - (calls_done - warm), 0) / step


def _effective_lam(norm: PRepBN, x: torch.Tensor, out: torch.Tensor) -> float:
    """The lambda a training forward actually used: out = lam * LN(x) + (1 - lam) * RepBN(x), solved
    by least squares (RepBN with batch statistics, recomputed without touching the running ones)."""
    bn = norm.norm2.bn
    rep = nn.functional.batch_norm(x.transpose(1, 2), None, None, bn.weight, bn.bias, True, 0.0, bn.eps).transpose(1, 2)
    rep = rep + norm.norm2.alpha * x
    d = norm.norm1(x) - rep
    return ((out - rep) * d).sum().item() / (d * d).sum().item()


def _train(model: nn.Module, steps: int, seed: int, lams: list | None = None) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=0.05)  # stateless: a checkpoint of the model suffices
    g = torch.Generator().manual_seed(seed)
    model.train()
    used: list = []
    hooks = [m.register_forward_hook(lambda m, a, o: used.append(_effective_lam(m, a[0].detach(), o.detach())))
             for m in prepbn_modules(model)] if lams is not None else []
    for _ in range(steps):
        announced, start = model.prepbn_lambdas(), len(used)
        x = torch.randn(4, 3, 28, 28, generator=g)
        y = torch.randint(0, 5, (4,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if lams is not None:
            lams.append((announced, used[start:]))
    for h in hooks:
        h.remove()


def test_prepbn_schedule_in_training():
    warm, step = 2, 3
    model = tiny("slab_deit_t", prepbn_warm=warm, prepbn_step=step)
    norms = prepbn_modules(model)
    assert len(norms) == 2 * 2 + 1
    bn0 = norms[0].norm2.bn
    lams: list = []
    _train(model, 2, seed=0, lams=lams)
    # warm-up: LayerNorm only, so the BatchNorm never ran (as in the authors' code)
    assert int(bn0.num_batches_tracked) == 0
    _train(model, 5, seed=1, lams=lams)
    for t, (announced, used) in enumerate(lams):
        want = [_expected_lam(t, warm, step)] * len(norms)
        assert announced == pytest.approx(want), t  # PRepBN.lam before the step
        assert used == pytest.approx(want, abs=1e-5), t  # what the forward computed
    assert [round(lam[0][0], 4) for lam in lams] == [1.0, 1.0, 1.0, 0.6667, 0.3333, 0.0, 0.0]
    assert int(bn0.num_batches_tracked) == 5
    for m in norms:  # end of the schedule: RepBN only, counters stop at 0
        assert int(m.warm) == 0 and int(m.iter) == 0 and int(m.total_step) == step and m.lam == 0.0


def test_prepbn_blends_layernorm_and_repbn():
    """A training forward is lam * LN(x) + (1 - lam) * RepBN(x) (batch statistics); eval is RepBN
    with running statistics only."""
    torch.manual_seed(0)
    norm = _randomise(nn.Sequential(PRepBN(6, step=4, warm=1)))[0].double()
    x = torch.randn(3, 5, 6, dtype=torch.float64)
    norm.train()
    assert torch.equal(norm(x), norm.norm1(x))  # warm-up call
    for lam in (1.0, 0.75, 0.5, 0.25, 0.0, 0.0):
        ln = norm.norm1(x)
        bn = (x - x.mean((0, 1))) / torch.sqrt(x.var((0, 1), unbiased=False) + 1e-5)
        rep = bn * norm.norm2.bn.weight + norm.norm2.bn.bias + norm.norm2.alpha * x
        assert _rel(norm(x), lam * ln + (1 - lam) * rep) < 1e-12, lam
    norm.eval()
    bn = norm.norm2.bn
    expect = (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias + norm.norm2.alpha * x
    assert _rel(norm(x), expect) < 1e-12
    scale, shift = norm.affine()
    assert _rel(x * scale + shift, expect) < 1e-12


def test_checkpoint_resumes_the_schedule(tmp_path):
    """Stop after 3 steps (inside the decay), save, load into a fresh model, go on: the schedule and
    the weights equal an uninterrupted run's."""
    kw = dict(prepbn_warm=1, prepbn_step=4)
    straight = tiny("slab_deit_t", **kw)
    _train(straight, 3, seed=0)
    _train(straight, 4, seed=1)

    first = tiny("slab_deit_t", **kw)
    _train(first, 3, seed=0)
    assert first.prepbn_lambdas()[0] == pytest.approx(0.5)  # 1 warm-up call, 2 decay calls of 4
    path = save_safetensors(first.state_dict(), tmp_path / "slab.safetensors")
    resumed = load_checkpoint(tiny("slab_deit_t", seed=7, **kw), path)
    assert resumed.prepbn_lambdas() == first.prepbn_lambdas()
    _train(resumed, 4, seed=1)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ---- deploy fusion --------------------------------------------------------------------------------
_NORMS = (nn.LayerNorm, nn.modules.batchnorm._BatchNorm, PRepBN, RepBN, TokenAffine)


@pytest.mark.parametrize("name", list(TINY))
def test_deploy_equals_eval_in_float64_without_norms(name):
    from archzoo.deploy import deploy

    model = _randomise(tiny(name)).double().eval()
    x = _input(name, dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
    fused = deploy(model, example_input=x)
    assert [n for n, m in fused.named_modules() if isinstance(m, _NORMS)] == []
    assert fused.deploy_report.batchnorms_left == 0
    with torch.no_grad():
        assert _rel(fused(x), ref) < 1e-12
    # the original is untouched, and the model's own entry point does the same in place
    assert any(isinstance(m, PRepBN) for m in model.modules())
    model.reparameterize()
    model.reparameterize()  # idempotent
    assert not any(isinstance(m, _NORMS) for m in model.modules())
    with torch.no_grad():
        assert _rel(model(x), ref) < 1e-12


def test_timm_reparameterize_model_uses_the_hooks_in_float32():
    from timm.models import reparameterize_model

    model = _randomise(tiny("slab_pvt_t")).eval()
    x = _input("slab_pvt_t")
    with torch.no_grad():
        ref = model(x)
        fused = reparameterize_model(model)
        assert not any(isinstance(m, _NORMS) for m in fused.modules())
        assert _rel(fused(x), ref) < 1e-5


def test_headless_deploy_keeps_the_final_norm_as_an_affine_map():
    model = _randomise(tiny("slab_cswin_t", num_classes=0)).double().eval()
    x = _input("slab_cswin_t", dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
        model.reparameterize()
        assert isinstance(model.head.norm, TokenAffine)
        assert _rel(model(x), ref) < 1e-12


# ---- timm interface -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(TINY))
def test_train_step_and_intermediates(name):
    model = tiny(name)
    x = _input(name)
    model.train()
    out = model(x)
    assert out.shape == (2, 5)
    out.sum().backward()
    # every parameter is trained except the two the authors declare and never use
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert all(n == "cls_token" or n.endswith(".scale") for n in unused), unused
    model.eval()
    with torch.no_grad():
        final, inter = model.forward_intermediates(x)
        feats = model.forward_features(x)
        assert torch.equal(final, feats)
        for t, info in zip(inter, model.feature_info):
            s = TINY[name]["img_size"] // info["reduction"]
            assert t.shape == (2, info["num_chs"], s, s)
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(3)
    assert model.get_classifier().out_features == 3


def test_features_only():
    m = timm.create_model("slab_swin_t", features_only=True, **TINY["slab_swin_t"])
    with torch.no_grad():
        feats = m(_input("slab_swin_t"))
    assert [f.shape[1] for f in feats] == [8, 16, 32]


def test_input_size_is_checked():
    from archzoo.registry import create_model

    model = create_model("slab_deit_t", **TINY["slab_deit_t"])
    assert model.pretrained_cfg["input_size"] == (3, 28, 28)
    with pytest.raises(InputError, match="28x28"):
        model(torch.randn(1, 3, 32, 32))
