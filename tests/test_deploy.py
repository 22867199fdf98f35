"""archzoo.deploy: the deploy form equals the eval form for every timm model of the cards."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import archzoo
from archzoo.deploy import deploy
from archzoo.papers import load_cards
from archzoo.validation import min_input_size
from archzoo.verify import build_on_meta, count_params

_TIMM = sorted({v.model for c in load_cards() for v in c.variants if v.provider == "timm"})
_BIG = 60_000_000  # models above this many parameters run only with -m slow


def _params(name: str) -> int:
    return count_params(build_on_meta(name))


def _cases():
    for name in _TIMM:
        marks = [pytest.mark.slow] if _params(name) > _BIG else []
        yield pytest.param(name, marks=marks, id=name)


def _randomise_bn(model: nn.Module) -> None:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def _small_input(model: nn.Module) -> torch.Tensor:
    """64 px where the model takes it, else the size it was configured for (HaloNet's blocks, ...)."""
    cfg = model.pretrained_cfg
    if not cfg.get("fixed_input_size"):
        x = torch.randn(2, 3, *[max(min_input_size(model), 64)] * 2)
        try:
            with torch.no_grad():
                model(x)
            return x
        except archzoo.InputError:
            pass
    return torch.randn(2, 3, *cfg["input_size"][-2:])


@pytest.mark.parametrize("name", list(_cases()))
def test_deploy_equals_eval(name):
    torch.manual_seed(0)
    model = archzoo.create_model(name, num_classes=10).eval()
    _randomise_bn(model)
    x = _small_input(model)
    with torch.no_grad():
        ref = model(x)
        fast = deploy(model, example_input=x)
        out = fast(x)
    report = fast.deploy_report
    n_bn = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert report.conv_bn_fused + report.batchnorms_left == n_bn
    assert ((out - ref).norm() / ref.norm()).item() < 1e-5, str(report)
    print(f"{name}: {report}")


def test_deploy_does_not_touch_the_original_and_fuses_bn_models():
    torch.manual_seed(0)
    model = archzoo.create_model("mobilenetv2_035", num_classes=10).eval()
    _randomise_bn(model)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    assert archzoo.deploy is deploy  # the public API: archzoo.deploy(model)
    x = torch.randn(2, 3, 64, 64)
    fast = archzoo.deploy(model, example_input=x)
    # MobileNetV2: every BatchNorm follows its own convolution, so every one is fused
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert n_bn > 0 and fast.deploy_report.conv_bn_fused == n_bn and fast.deploy_report.batchnorms_left == 0
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in fast.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in sd.items())
    with torch.no_grad():
        ref, out = model(x), fast(x)
    assert ((out - ref).norm() / ref.norm()).item() < 1e-5
