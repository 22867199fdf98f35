"""ConvBN modes (P25): Tune = Eval in loss and every gradient (float64), Deploy = Eval in output,
pair counts, state-dict compatibility."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import archzoo
from archzoo.methods.convbn import find_conv_bn_pairs, freeze_batchnorm, set_mode

# (model, input size, expected exclusive Conv-BN pairs): models of the collection's cards
MODELS = [
    ("mobilenetv2_035", 32, 52),   # P10: stem + 17 blocks x (2-3 convs) + head conv
    ("resnetrs50", 32, 56),        # P28: 3-conv stem + stride-2 conv in place of max-pool, 16 bottlenecks x 3, 4 shortcuts
]


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if m.weight is not None:
                m.weight.data.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
                m.bias.data.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    m = archzoo.create_model(name, num_classes=7).double()
    _randomise_bn(m)
    return m


def _loss_and_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    model.zero_grad()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-300)).item()


@pytest.mark.parametrize("name, size, pairs", MODELS)
def test_tune_equals_eval_in_loss_and_gradients(name, size, pairs):
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    y = torch.tensor([1, 4])
    eval_model = _build(name)
    assert set_mode(eval_model, "eval", x) == pairs
    eval_model.train()  # frozen BNs stay in eval: the transfer-learning setting
    tune_model = copy.deepcopy(eval_model)
    assert set_mode(tune_model, "tune", x) == pairs
    tune_model.train()
    l_eval, g_eval = _loss_and_grads(eval_model, x, y)
    l_tune, g_tune = _loss_and_grads(tune_model, x, y)
    assert _rel(l_tune, l_eval) < 1e-6
    assert g_eval.keys() == g_tune.keys()
    for k in g_eval:
        assert _rel(g_tune[k], g_eval[k]) < 1e-6, k
    # BN statistics were not updated in either model (frozen)
    for (k, a), b in zip(eval_model.state_dict().items(), tune_model.state_dict().values()):
        if "running" in k:
            assert torch.equal(a, b)


@pytest.mark.parametrize("name, size, pairs", MODELS)
def test_deploy_equals_eval_and_removes_batchnorms(name, size, pairs):
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    model = _build(name).eval()
    with torch.no_grad():
        ref = model(x)
    deployed = copy.deepcopy(model)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert set_mode(deployed, "deploy", x) == pairs
    assert sum(isinstance(m, nn.BatchNorm2d) for m in deployed.modules()) == n_bn - pairs
    with torch.no_grad():
        assert _rel(deployed(x), ref) < 1e-12
    with pytest.raises(ValueError, match="fused for deployment"):
        set_mode(deployed, "eval")


def test_tune_state_dict_round_trip_and_restore():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    plain = _build("mobilenetv2_035").eval()
    tuned = copy.deepcopy(plain)
    set_mode(tuned, "tune", x)
    sd = tuned.state_dict()
    assert sd.keys() == plain.state_dict().keys()
    fresh = archzoo.create_model("mobilenetv2_035", num_classes=7).double().eval()
    fresh.load_state_dict(sd)  # a tune-mode checkpoint loads into the plain model...
    tuned.load_state_dict(fresh.state_dict())  # ...and back
    with torch.no_grad():
        assert _rel(fresh(x), plain(x)) == 0
        assert _rel(tuned(x), plain(x)) < 1e-12
    set_mode(tuned, "train")
    tuned.train()
    assert all(m.training for m in tuned.modules())


def test_pairs_exclude_shared_outputs_and_count_transposed_and_1d():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.bn_a = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
            self.b, self.bn_b = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)      # b's output also used in a skip
            self.t, self.bn_t = nn.ConvTranspose2d(4, 6, 2, stride=2, groups=2), nn.BatchNorm2d(6)

        def forward(self, x):
            x = self.bn_a(self.a(x))
            y = self.b(x)
            x = self.bn_b(y) + y
            return self.bn_t(self.t(x)).mean((2, 3))

    net = Net().double()
    _randomise_bn(net)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    assert find_conv_bn_pairs(net, x) == [("a", "bn_a"), ("t", "bn_t")]
    net.eval()
    ref = net(x)
    tuned = copy.deepcopy(net)
    assert set_mode(tuned, "tune", x) == 2
    assert _rel(tuned(x), ref) < 1e-12
    conv1d = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3)).double()
    _randomise_bn(conv1d)
    conv1d.eval()
    z = torch.randn(2, 2, 10, dtype=torch.float64)
    ref1 = conv1d(z)
    assert set_mode(conv1d, "deploy", z) == 1 and _rel(conv1d(z), ref1) < 1e-12


def test_freeze_batchnorm_and_bad_mode():
    m = _build("mobilenetv2_035")
    n = freeze_batchnorm(m)
    m.train()
    assert n > 0 and not any(b.training for b in m.modules() if isinstance(b, nn.BatchNorm2d))
    with pytest.raises(ValueError, match="unknown ConvBN mode 'fast'"):
        set_mode(m, "fast")
