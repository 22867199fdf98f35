"""Poincaré ResNet (P6): reference vector, exact counts, gradcheck of the manual backward passes,
batch statistics in eval, the authors' quirks behind switches, float32 training without NaNs."""
from __future__ import annotations

import pytest
import timm
import torch

import archzoo
from archzoo.models import _poincare_ops as P
from archzoo.models.poincare_resnet import (
    PoincareBall, PoincareBatchNorm2d, PoincareConv2d, PoincareLinear, PoincareResNet, parse_authors_name,
)
from archzoo.papers import card_for_model
from archzoo.reference import check_reference
from archzoo.verify import build_on_meta, count_flops, count_params


def test_reference_vector(ref_file):
    r = check_reference(ref_file("poincare_resnet_a"))
    assert r.ok, r


def test_exact_counts_of_the_authors_variants():
    authors_names = {  # the authors' HyperbolicResNet with 10 classes
        "poincare_resnet20_8_16_32": "hyperbolic-8-16-32-resnet-20",
        "poincare_resnet32_8_16_32": "hyperbolic-8-16-32-resnet-32",
        "poincare_resnet20_16_32_64": "hyperbolic-16-32-64-resnet-20",
        "poincare_resnet20_32_64_128": "hyperbolic-32-64-128-resnet-20",
    }
    for name, authors in authors_names.items():
        m = build_on_meta(name)
        _, variant = card_for_model(name)  # the count of the authors' code (card's reference_params)
        assert count_params(m) == variant.reference_params, name
        assert (m.channel_dims, m.depths) == tuple(parse_authors_name(authors))
    # shared balls: one parameter, several state-dict keys (as in the authors' state dicts)
    with torch.device("meta"):
        m = PoincareResNet((4, 8, 8), (1, 1, 1))
    sd = m.state_dict()
    assert {"conv_ball.isp_c", "conv.ball.isp_c", "bn.norm.ball.isp_c", "group1.0.bn2.norm.ball.isp_c"} <= set(sd)
    assert m.group1[0].bn1.ball is m.group1[0].bn2.ball and "group1.0.skip_ball.isp_c" not in sd


def _ball_points(*shape: int, radius: float, gen: torch.Generator) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64, generator=gen)
    r = torch.rand(*shape[:-1], 1, dtype=torch.float64, generator=gen) * radius
    return (x / x.norm(dim=-1, keepdim=True) * r).requires_grad_()


def test_manual_backward_passes_gradcheck():
    gen = torch.Generator().manual_seed(0)
    c = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)  # the curvature gradient is checked too
    inside = 0.9 / 0.3 ** 0.5
    x, y = _ball_points(3, 5, radius=inside, gen=gen), _ball_points(3, 5, radius=inside, gen=gen)
    cases = {
        "MobiusAdd": (P.MobiusAdd, (x, y, c), P.mobius_add_fwd),
        "MobiusAdd (broadcast)": (P.MobiusAdd, (_ball_points(1, 5, radius=inside, gen=gen), y, c), P.mobius_add_fwd),
        "Project (both branches)": (P.Project, (_ball_points(6, 5, radius=2.5 * inside, gen=gen), c), P.project_fwd),
        "ExpMap0": (P.ExpMap0, (_ball_points(3, 5, radius=4.0, gen=gen), c), P.expmap0_fwd),
        "LogMap0": (P.LogMap0, (x, c), P.logmap0_fwd),
        "ConfFactor": (P.ConfFactor, (x, c), P.conf_factor_fwd),
        "ExpSecondTerm": (P.ExpSecondTerm, (x, _ball_points(3, 5, radius=3.0, gen=gen), c), P.exp_second_term_fwd),
        "LogScaledTerm": (P.LogScaledTerm, (x, y, c), P.log_scaled_term_fwd),
    }
    for name, (fn, args, plain) in cases.items():
        assert torch.autograd.gradcheck(lambda *a: fn.apply(*a, -1), args, eps=1e-6, atol=1e-7), name
        # and the same gradients as autograd through the plain formula, to rounding
        g = torch.randn_like(plain(*args, -1))
        manual = torch.autograd.grad(fn.apply(*args, -1), args, g)
        auto = torch.autograd.grad(plain(*args, -1), args, g)
        for a, b in zip(manual, auto):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-13), name
    # along another axis (the residual connection works on dim -1 of NCHW maps, the conv on dim 1)
    v = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: P.LogMap0.apply(P.ExpMap0.apply(t, c, 1) * 0.7, c, 1), (v,))


def test_manual_backward_keeps_graphs_small_and_matches_autograd():
    def graph_nodes(t: torch.Tensor) -> int:
        seen, stack = set(), [t.grad_fn]
        while stack:
            f = stack.pop()
            if f is None or f in seen:
                continue
            seen.add(f)
            stack += [n for n, _ in f.next_functions]
        return len(seen)

    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64, requires_grad=True)
    outs, grads, nodes = [], [], []
    for manual in (True, False):
        ball = PoincareBall(0.1, manual_backward=manual)
        conv = PoincareConv2d(4, 6, 3, ball, padding=1).double()
        bn = PoincareBatchNorm2d(6, ball).double()
        with torch.no_grad():
            conv.weights.add_(0.1 * torch.randn_like(conv.weights, generator=torch.Generator().manual_seed(1)))
            bn.norm.mean.add_(0.1)
        out = bn(conv(x))
        nodes.append((graph_nodes(conv(x)), graph_nodes(out) - graph_nodes(conv(x))))
        outs.append(out)
        grads.append(torch.autograd.grad(out.pow(2).sum(), (x, conv.weights, conv.bias, bn.norm.mean, bn.norm.var)))
    assert torch.equal(outs[0], outs[1])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)
    (conv_manual, bn_manual), (conv_auto, bn_auto) = nodes
    assert conv_manual < conv_auto and bn_manual < 0.3 * bn_auto, nodes  # batch norm: 65 vs 271 nodes

    # whole network, float64: manual vs autograd (differences come only from the float32 curvature of
    # the residual ball, whose c**2 the forward rounds in float32 as the authors' code does)
    torch.manual_seed(0)
    net = PoincareResNet((3, 4, 5), (1, 1, 1), num_classes=4).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    xb = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    gs = []
    for manual in (True, False):
        for mod in net.modules():
            if hasattr(mod, "manual_backward"):
                mod.manual_backward = manual
        for blk in (*net.group1, *net.group2, *net.group3):
            blk.skip_ball.manual_backward = manual
        net.zero_grad()
        net(xb).pow(2).sum().backward()
        gs.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    assert ((gs[0] - gs[1]).norm() / gs[1].norm()) < 1e-6


def test_batch_statistics_also_in_eval():
    torch.manual_seed(0)
    m = PoincareResNet((4, 4, 4), (1, 1, 1), num_classes=3).double().eval()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        full = m(x)
        alone = m(x[:2])
        again = m(x)
    assert torch.equal(full, again)
    assert not torch.allclose(full[:2], alone)  # the output of a sample depends on its batch
    assert m(x[:1]).shape == (1, 3)  # batch 1 works (the authors' squeeze() breaks it)
    bn = m.bn.norm
    m.train()
    m(x)
    assert torch.equal(bn.running_mean, torch.zeros(1, 4, dtype=torch.float64)) and bn.running_var == 1


def test_identity_initialisation_and_authors_quirks():
    m = PoincareResNet((4, 8, 8), (1, 1, 1), num_classes=5)
    w = m.group2[0].conv1.weights
    assert w.shape == (9 * 4, 8) and torch.equal(w, 0.5 * torch.eye(36, 8))
    assert torch.equal(m.fc.z, 0.5 * torch.eye(8, 5)) and not m.fc.bias.any()
    assert m.conv_ball.isp_c.dtype == torch.float32 and not m.conv_ball.isp_c.requires_grad
    assert m.double().group1[0].skip_ball.c(torch.device("cpu")).dtype == torch.float32  # stays float32
    # the authors' MLR conformal factor 2 (1 - c|x|^2) vs the formula's 2 / (1 - c|x|^2)
    torch.manual_seed(0)
    x, z, r, c = 0.5 * torch.randn(3, 4), torch.randn(4, 2), torch.randn(2), torch.tensor(0.2)
    x2 = x.pow(2).sum(-1, keepdim=True)
    for form, lam in (("authors", 2 * (1 - c * x2)), ("paper", 2 / (1 - c * x2))):
        zn = z.norm(dim=0)
        expected = 2 * zn / c.sqrt() * torch.asinh(
            c.sqrt() * lam * (x @ z) / zn * torch.cosh(2 * c.sqrt() * r) - (lam - 1) * torch.sinh(2 * c.sqrt() * r))
        assert torch.allclose(P.mlr(x, z, r, c, form), expected, atol=1e-5), form
    # the residual Möbius addition runs over the width axis (authors) or the channels (paper, skip_dim=1)
    torch.manual_seed(0)
    xi = torch.randn(2, 3, 16, 16)
    a = PoincareResNet((4, 4, 4), (1, 1, 1), num_classes=3).eval()
    b = PoincareResNet((4, 4, 4), (1, 1, 1), num_classes=3, skip_dim=1, mlr_lambda="paper").eval()
    with torch.no_grad():
        assert not torch.allclose(a(xi), b(xi))


def test_float32_training_steps_without_nans():
    with torch.device("meta"):
        assert archzoo.create_model("poincare_resnet20_8_16_32", in_chans=1)(torch.empty(2, 1, 32, 32)).shape == (2, 10)
    torch.manual_seed(0)
    m = PoincareResNet((4, 8, 8), (1, 1, 1), num_classes=10, in_chans=1)  # float32, the authors' eps 4e-3
    x = torch.rand(8, 1, 32, 32) * 2 - 1  # digits-like range after normalisation
    y = torch.arange(8) % 10
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert all(torch.isfinite(p).all() for p in m.parameters())


def test_timm_interface():
    with torch.device("meta"):
        feats = timm.create_model("poincare_resnet20_8_16_32", features_only=True)
        outs = feats(torch.empty(2, 3, 32, 32))
    assert [o.shape[1:] for o in outs] == [(8, 32, 32), (8, 32, 32), (16, 16, 16), (32, 8, 8)]
    # the meta forward skips the element-wise ball maths but counts the same FLOPs as a real forward
    small = PoincareResNet((4, 4, 6), (1, 2, 1), num_classes=3)
    with torch.device("meta"):
        small_meta = PoincareResNet((4, 4, 6), (1, 2, 1), num_classes=3)
    assert count_flops(small_meta, 16) == count_flops(small, 16, device="cpu") > 0
    m = PoincareResNet((4, 4, 6), (1, 1, 1), num_classes=3).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    f = m.forward_features(x)
    assert m.forward_head(f, pre_logits=True).shape == (2, 6)
    assert torch.equal(m.forward_head(f), m(x))
    m.reset_classifier(7)
    assert m(x).shape == (2, 7) and m.fc.ball is m.linear_ball and m.fc.z.dtype == torch.float64
    assert {"conv_ball.isp_c", "bn.norm.var"} <= m.no_weight_decay()
    with pytest.raises(ValueError):
        parse_authors_name("euclidean-8-16-32-resnet-20")
    assert isinstance(PoincareLinear(3, 2, PoincareBall()).ball.c, torch.Tensor)
