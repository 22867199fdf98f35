"""The fastest exact inference form of any model of the collection.

``deploy(model)`` returns a copy in eval mode with
1. each architecture's own re-parameterisation applied (timm's convention: a module's ``fuse()``,
   ``reparameterize()`` or ``switch_to_deploy()``, walked by ``timm.models.reparameterize_model``;
   e.g. UniRepLKNet merges its dilated branches, SLAB folds its re-parameterised BatchNorm),
2. every exclusive Conv-BatchNorm pair fused into the convolution (the ConvBN paper's Deploy mode,
   :mod:`archzoo.methods.convbn`, found on a traced forward pass so it works for any model).

Outputs equal the eval-mode model's up to float32 rounding.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["deploy", "DeployReport"]


@dataclass
class DeployReport:
    reparameterized: list[str] = field(default_factory=list)
    conv_bn_fused: int = 0
    batchnorms_left: int = 0

    def __str__(self) -> str:
        return (f"{len(self.reparameterized)} module(s) re-parameterised, {self.conv_bn_fused} Conv-BN pair(s) fused, "
                f"{self.batchnorms_left} BatchNorm(s) left")


def _reparameterize(model: nn.Module) -> list[str]:
    from timm.models import reparameterize_model

    hooked = [n for n, m in model.named_modules()
              if m is not model and any(callable(getattr(m, h, None)) for h in ("fuse", "reparameterize", "switch_to_deploy"))]
    reparameterize_model(model, inplace=True)
    return hooked


def deploy(model: nn.Module, example_input: torch.Tensor | None = None, inplace: bool = False) -> nn.Module:
    """The model's fastest exact inference form; ``model.deploy_report`` says what was done."""
    from archzoo.methods.convbn import set_mode

    if not inplace:
        model = copy.deepcopy(model)
    model.eval()
    report = DeployReport()
    report.reparameterized = _reparameterize(model)
    report.conv_bn_fused = set_mode(model, "deploy", example_input)
    report.batchnorms_left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    model.__dict__["deploy_report"] = report
    return model
