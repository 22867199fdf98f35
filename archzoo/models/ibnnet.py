"""IBN-Net: Instance Normalization and Batch Normalization combined in ResNet, ResNeXt, SE-ResNet and DenseNet.

Paper: "Two at Once: Enhancing Learning and Generalization Capacities via IBN-Net", Pan et al.,
ECCV 2018, arXiv:1807.09441. Authors' code: https://github.com/XingangPan/IBN-Net (``ibnnet/``).

Key names are the authors' (torchvision ResNet / DenseNet keys plus ``.IN`` / ``.BN``), so their
checkpoints load unchanged:

* IBN-a (ResNet, ResNeXt, SE-ResNet): ``bn1`` of every block in stages 1-3 is an :class:`IBN` with an
  affine InstanceNorm on the FIRST ``int(planes * 0.5)`` channels and a BatchNorm on the rest.
* IBN-b (ResNet): the stem ``bn1`` is an affine InstanceNorm, and the LAST block of stages 1-2 applies
  an affine InstanceNorm (``layerX.j.IN``) after the residual add, before the final ReLU.
* IBN-a (DenseNet): in dense blocks 1-3, layers 1, 4, 7, ... use ``norm1 = IBN(C, 0.4)`` of
  ``densenet_ibn.py``, which puts BatchNorm FIRST on ``int(C * 0.6)`` channels and the affine
  InstanceNorm on the remaining ones.

Deviation: the authors' heads hard-code a 7x7 average pool (224 input only); archzoo pools adaptively,
which is identical at 224 and lets the nets take other sizes.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, SelectAdaptivePool2d
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference

__all__ = ["IBN", "SELayer", "BasicBlockIBN", "BottleneckIBN", "ResNetIBN", "DenseNetIBN", "checkpoint_filter_fn"]

IbnType = Optional[str]  # 'a' | 'b' | None


class IBN(nn.Module):
    """Instance-Batch Normalization: InstanceNorm (affine, per-sample statistics also in eval) on one
    part of the channels, BatchNorm on the other, concatenated back in channel order.

    ``in_first=True`` (ResNet flavour): IN on the first ``int(channels * in_ratio)`` channels.
    ``in_first=False`` (DenseNet flavour): BN on the first ``int(channels * (1 - in_ratio))`` channels.
    """

    def __init__(self, channels: int, in_ratio: float = 0.5, in_first: bool = True) -> None:
        super().__init__()
        self.in_first = in_first
        if in_first:
            n_in = int(channels * in_ratio)
            self.split = n_in
            self.IN = nn.InstanceNorm2d(n_in, affine=True)
            self.BN = nn.BatchNorm2d(channels - n_in)
        else:
            n_bn = int(channels * (1 - in_ratio))
            self.split = n_bn
            self.BN = nn.BatchNorm2d(n_bn)
            self.IN = nn.InstanceNorm2d(channels - n_bn, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x[:, : self.split], x[:, self.split:]
        if self.in_first:
            return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), 1)
        return torch.cat((self.BN(a.contiguous()), self.IN(b.contiguous())), 1)


class SELayer(nn.Module):
    """Squeeze-and-excitation with the authors' keys (``fc.0`` / ``fc.2``, bias-free Linear layers)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = int(channels / reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False), nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean((2, 3)))
        return x * w[:, :, None, None]


def _bn1(planes: int, ibn: IbnType) -> nn.Module:
    return IBN(planes) if ibn == "a" else nn.BatchNorm2d(planes)


class BasicBlockIBN(nn.Module):
    """ResNet basic block (two 3x3 convs) with IBN-a in ``bn1`` or IBN-b after the residual add."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, ibn: IbnType = None, stride: int = 1,
                 downsample: Optional[nn.Module] = None, drop_path: float = 0.0, **_: Any) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = _bn1(planes, ibn)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.IN = nn.InstanceNorm2d(planes, affine=True) if ibn == "b" else None
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.drop_path(out) + shortcut
        if self.IN is not None:
            out = self.IN(out)
        return self.relu(out)


class BottleneckIBN(nn.Module):
    """ResNet / ResNeXt / SE-ResNet bottleneck with IBN-a in ``bn1`` or IBN-b after the residual add.

    Inner width ``floor(planes * base_width / 64) * cardinality`` (= planes for plain ResNet); the SE
    layer (SE-ResNet) acts on the ``bn3`` output before the residual add, as in the authors' code.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, ibn: IbnType = None, stride: int = 1,
                 downsample: Optional[nn.Module] = None, cardinality: int = 1, base_width: int = 64,
                 se_reduction: Optional[int] = None, drop_path: float = 0.0) -> None:
        super().__init__()
        width = int(math.floor(planes * (base_width / 64))) * cardinality
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = _bn1(width, ibn)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.se = SELayer(out, se_reduction) if se_reduction else None
        self.IN = nn.InstanceNorm2d(out, affine=True) if ibn == "b" else None
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        out = self.drop_path(out) + shortcut
        if self.IN is not None:
            out = self.IN(out)
        return self.relu(out)


_BLOCKS: Dict[str, Type[nn.Module]] = {"basic": BasicBlockIBN, "bottleneck": BottleneckIBN}


class ResNetIBN(nn.Module):
    """ResNet / ResNeXt / SE-ResNet with IBN-a or IBN-b (torchvision key names).

    Args:
        block: 'basic' or 'bottleneck'.
        layers: blocks per stage.
        ibn_cfg: per-stage 'a' | 'b' | None; ('a','a','a',None) = IBN-a, ('b','b',None,None) = IBN-b.
        widths: stage widths ``planes`` (the authors hard-code 64/128/256/512).
        stem_width: stem channels (default ``widths[0]``, as the authors' 64).
        cardinality, base_width: ResNeXt grouping (1, 64 = plain ResNet).
        se_reduction: SE reduction (SE-ResNet), None = no SE.
    """

    def __init__(
            self,
            block: str = "bottleneck",
            layers: Sequence[int] = (3, 4, 6, 3),
            ibn_cfg: Sequence[IbnType] = ("a", "a", "a", None),
            widths: Sequence[int] = (64, 128, 256, 512),
            stem_width: Optional[int] = None,
            cardinality: int = 1,
            base_width: int = 64,
            se_reduction: Optional[int] = None,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = "avg",
            drop_rate: float = 0.0,
            drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        block_cls = _BLOCKS[block]
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.grad_checkpointing = False
        stem_width = stem_width or widths[0]
        self.conv1 = nn.Conv2d(in_chans, stem_width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.InstanceNorm2d(stem_width, affine=True) if ibn_cfg[0] == "b" else nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=stem_width, reduction=2, module="relu")]

        total, done = sum(layers), 0
        inplanes, reduction = stem_width, 4
        for i, (planes, n, ibn) in enumerate(zip(widths, layers, ibn_cfg)):
            stride = 1 if i == 0 else 2
            reduction *= stride
            out = planes * block_cls.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))
            blocks = []
            for j in range(n):
                # IBN-b: only the LAST block of the stage gets the IN (the first never does, even if alone)
                b_ibn = None if (ibn == "b" and (j == 0 or j < n - 1)) else ibn
                blocks.append(block_cls(
                    inplanes if j == 0 else out, planes, ibn=b_ibn, stride=stride if j == 0 else 1,
                    downsample=downsample if j == 0 else None, cardinality=cardinality, base_width=base_width,
                    se_reduction=se_reduction, drop_path=drop_path_rate * (done + j) / max(total - 1, 1),
                ))
            done += n
            inplanes = out
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.feature_info.append(dict(num_chs=out, reduction=reduction, module=f"layer{i + 1}"))
        self.num_features = self.head_hidden_size = inplanes
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(inplanes, num_classes) if num_classes > 0 else nn.Identity()

        # the authors' init: conv ~ N(0, sqrt(2 / (k*k*out))), norm weight 1 / bias 0
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(stem=r"^conv1|^bn1", blocks=r"^layer(\d+)" if coarse else r"^layer(\d+)\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _stage(self, name: str, x: torch.Tensor) -> torch.Tensor:
        layer = getattr(self, name)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(layer, x)
        return layer(x)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stem output (stride 2) and the four stage outputs (strides 4-32)."""
        assert output_fmt == "NCHW", "Output shape must be NCHW."
        take_indices, max_index = feature_take_indices(5, indices)
        intermediates = []
        x = self.relu(self.bn1(self.conv1(x)))
        if 0 in take_indices:
            intermediates.append(x)
        x = self.maxpool(x)
        names = ("layer1", "layer2", "layer3", "layer4")
        for i, name in enumerate(names[:max_index] if stop_early else names, start=1):
            x = self._stage(name, x)
            if i in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        take_indices, max_index = feature_take_indices(5, indices)
        for name in ("layer1", "layer2", "layer3", "layer4")[max_index:]:
            setattr(self, name, nn.Sequential())
        if max_index == 0:
            self.maxpool = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = self._stage(name, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# ---------------------------------------------------------------------------------------------- DenseNet
class DenseLayerIBN(nn.Module):
    """DenseNet-BC layer: norm1-relu-conv1x1-norm2-relu-conv3x3, output concatenated to its input."""

    def __init__(self, in_chs: int, growth_rate: int, bn_size: int, ibn: bool, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.norm1 = IBN(in_chs, 0.4, in_first=False) if ibn else nn.BatchNorm2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, bn_size * growth_rate, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(F.relu(self.norm1(x)))
        new = self.conv2(F.relu(self.norm2(new)))
        if self.drop_rate > 0:
            new = F.dropout(new, p=self.drop_rate, training=self.training)
        return torch.cat((x, new), 1)


class DenseTransitionIBN(nn.Sequential):
    """BN-ReLU-conv1x1-avgpool2 between dense blocks (keys norm / conv)."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__(OrderedDict([
            ("norm", nn.BatchNorm2d(in_chs)), ("relu", nn.ReLU(inplace=True)),
            ("conv", nn.Conv2d(in_chs, out_chs, 1, bias=False)), ("pool", nn.AvgPool2d(2, stride=2)),
        ]))


class DenseNetIBN(nn.Module):
    """DenseNet-BC with IBN-a (torchvision key names).

    Args:
        growth_rate, block_config, num_init_features, bn_size: DenseNet-BC hyper-parameters.
        ibn_blocks: how many leading dense blocks use IBN (the authors: 3); within them every third
            layer (index % 3 == 0) has ``norm1 = IBN(C, 0.4)``.
        proj_drop_rate: dropout after each dense layer (the authors' ``drop_rate``).
        drop_rate: dropout before the classifier.
    """

    def __init__(
            self,
            growth_rate: int = 32,
            block_config: Sequence[int] = (6, 12, 24, 16),
            num_init_features: int = 64,
            bn_size: int = 4,
            ibn_blocks: int = 3,
            num_classes: int = 1000,
            in_chans: int = 3,
            global_pool: str = "avg",
            drop_rate: float = 0.0,
            proj_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_classes, self.in_chans, self.drop_rate = num_classes, in_chans, drop_rate
        self.grad_checkpointing = False
        self.features = nn.Sequential(OrderedDict([
            ("conv0", nn.Conv2d(in_chans, num_init_features, 7, stride=2, padding=3, bias=False)),
            ("norm0", nn.BatchNorm2d(num_init_features)),
            ("relu0", nn.ReLU(inplace=True)),
            ("pool0", nn.MaxPool2d(3, stride=2, padding=1)),
        ]))
        self.feature_info = [dict(num_chs=num_init_features, reduction=2, module="features.relu0")]
        self._stage_ends = ["relu0"]
        chs, reduction = num_init_features, 4
        for i, n in enumerate(block_config):
            block = nn.Sequential(OrderedDict(
                (f"denselayer{j + 1}", DenseLayerIBN(chs + j * growth_rate, growth_rate, bn_size,
                                                     ibn=i < ibn_blocks and j % 3 == 0, drop_rate=proj_drop_rate))
                for j in range(n)
            ))
            self.features.add_module(f"denseblock{i + 1}", block)
            chs += n * growth_rate
            if i != len(block_config) - 1:
                self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.denseblock{i + 1}"))
                self._stage_ends.append(f"denseblock{i + 1}")
                self.features.add_module(f"transition{i + 1}", DenseTransitionIBN(chs, chs // 2))
                chs //= 2
                reduction *= 2
        self.features.add_module("norm5", nn.BatchNorm2d(chs))
        self.feature_info.append(dict(num_chs=chs, reduction=reduction, module="features.norm5"))
        self._stage_ends.append("norm5")
        self.num_features = self.head_hidden_size = chs
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.classifier = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()
        # the authors keep PyTorch's default init for DenseNet-IBN

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(stem=r"^features\.conv0|^features\.norm0",
                    blocks=[(r"^features\.(?:denseblock|transition)(\d+)", None), (r"^features\.norm5", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classifier

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def _run(self, name: str, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and name.startswith("denseblock") and not torch.jit.is_scripting():
            return checkpoint_seq(module, x)
        x = module(x)
        return F.relu(x) if name == "norm5" else x  # the authors' relu after norm5

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Stem output (stride 2), dense blocks 1-3 (before their transitions) and the final map."""
        assert output_fmt == "NCHW", "Output shape must be NCHW."
        take_indices, max_index = feature_take_indices(len(self._stage_ends), indices)
        take = {self._stage_ends[i] for i in take_indices}
        last = self._stage_ends[max_index] if stop_early else None
        intermediates = []
        for name, module in self.features.named_children():
            x = self._run(name, module, x)
            if name in take:
                intermediates.append(x)
            if name == last:
                break
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: Union[int, List[int]] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> List[int]:
        take_indices, max_index = feature_take_indices(len(self._stage_ends), indices)
        names = [n for n, _ in self.features.named_children()]
        keep = names[: names.index(self._stage_ends[max_index]) + 1]
        self.features = nn.Sequential(OrderedDict((n, getattr(self.features, n)) for n in keep))
        self._stage_ends = self._stage_ends[: max_index + 1]
        self.feature_info = self.feature_info[: max_index + 1]
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for name, module in self.features.named_children():
            x = self._run(name, module, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """The authors' checkpoints already use this module's key names (torchvision keys + .IN/.BN);
    only unwrap common containers and a DataParallel ``module.`` prefix."""
    return unwrap_state_dict(state_dict, wrapper_keys=("state_dict", "model"))


# ---------------------------------------------------------------------------------------------- registry
_RELEASES = "https://github.com/XingangPan/IBN-Net/releases/download/v1.0/"


def _cfg(file: str = "", first_conv: str = "conv1", classifier: str = "fc", **kwargs: Any) -> Dict[str, Any]:
    # the authors' weights are .pth pickles: recorded as origin_url only, never downloaded implicitly
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bilinear", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": first_conv, "classifier": classifier,
        "origin_url": (_RELEASES + file) if file else "https://github.com/XingangPan/IBN-Net",
        "paper_ids": "arXiv:1807.09441", "license": "mit",
        **kwargs,
    }


def _dcfg(file: str = "") -> Dict[str, Any]:
    return _cfg(file, first_conv="features.conv0", classifier="classifier")


default_cfgs = generate_default_cfgs({
    "resnet18_ibn_a.in1k": _cfg("resnet18_ibn_a-2f571257.pth"),
    "resnet34_ibn_a.in1k": _cfg("resnet34_ibn_a-94bc1577.pth"),
    "resnet50_ibn_a.in1k": _cfg("resnet50_ibn_a-d9d0bb7b.pth"),
    "resnet101_ibn_a.in1k": _cfg("resnet101_ibn_a-59ea0ac6.pth"),
    "resnet152_ibn_a.untrained": _cfg(),
    "resnet18_ibn_b.in1k": _cfg("resnet18_ibn_b-bc2f3c11.pth"),
    "resnet34_ibn_b.in1k": _cfg("resnet34_ibn_b-04134c37.pth"),
    "resnet50_ibn_b.in1k": _cfg("resnet50_ibn_b-9ca61e85.pth"),
    "resnet101_ibn_b.in1k": _cfg("resnet101_ibn_b-c55f6dba.pth"),
    "resnet152_ibn_b.untrained": _cfg(),
    "resnext50_ibn_a.untrained": _cfg(),
    "resnext101_ibn_a.in1k": _cfg("resnext101_ibn_a-6ace051d.pth"),
    "se_resnet50_ibn_a.untrained": _cfg(),
    "se_resnet101_ibn_a.in1k": _cfg("se_resnet101_ibn_a-fabed4e2.pth"),
    "densenet121_ibn_a.in1k": _dcfg("densenet121_ibn_a-e4af5cc1.pth"),
    "densenet169_ibn_a.in1k": _dcfg("densenet169_ibn_a-9f32c161.pth"),
    "densenet201_ibn_a.untrained": _dcfg(),
    "densenet161_ibn_a.untrained": _dcfg(),
})

_IBN_A = ("a", "a", "a", None)
_IBN_B = ("b", "b", None, None)


def _create_resnet(variant: str, pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    return build_model_with_cfg(
        ResNetIBN, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2, 3, 4)), **kwargs,
    )


def _create_densenet(variant: str, pretrained: bool = False, **kwargs: Any) -> DenseNetIBN:
    return build_model_with_cfg(
        DenseNetIBN, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2, 3, 4)), **kwargs,
    )


def _resnet(variant: str, pretrained: bool, kwargs: Dict[str, Any], **arch: Any) -> ResNetIBN:
    return _create_resnet(variant, pretrained, **{**arch, **kwargs})


@register_model
def resnet18_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-18-IBN-a."""
    return _resnet("resnet18_ibn_a", pretrained, kwargs, block="basic", layers=(2, 2, 2, 2), ibn_cfg=_IBN_A)


@register_model
def resnet34_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-34-IBN-a."""
    return _resnet("resnet34_ibn_a", pretrained, kwargs, block="basic", layers=(3, 4, 6, 3), ibn_cfg=_IBN_A)


@register_model
def resnet50_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-50-IBN-a."""
    return _resnet("resnet50_ibn_a", pretrained, kwargs, block="bottleneck", layers=(3, 4, 6, 3), ibn_cfg=_IBN_A)


@register_model
def resnet101_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-101-IBN-a."""
    return _resnet("resnet101_ibn_a", pretrained, kwargs, block="bottleneck", layers=(3, 4, 23, 3), ibn_cfg=_IBN_A)


@register_model
def resnet152_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-152-IBN-a (no released weights)."""
    return _resnet("resnet152_ibn_a", pretrained, kwargs, block="bottleneck", layers=(3, 8, 36, 3), ibn_cfg=_IBN_A)


@register_model
def resnet18_ibn_b(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-18-IBN-b."""
    return _resnet("resnet18_ibn_b", pretrained, kwargs, block="basic", layers=(2, 2, 2, 2), ibn_cfg=_IBN_B)


@register_model
def resnet34_ibn_b(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-34-IBN-b."""
    return _resnet("resnet34_ibn_b", pretrained, kwargs, block="basic", layers=(3, 4, 6, 3), ibn_cfg=_IBN_B)


@register_model
def resnet50_ibn_b(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-50-IBN-b."""
    return _resnet("resnet50_ibn_b", pretrained, kwargs, block="bottleneck", layers=(3, 4, 6, 3), ibn_cfg=_IBN_B)


@register_model
def resnet101_ibn_b(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-101-IBN-b."""
    return _resnet("resnet101_ibn_b", pretrained, kwargs, block="bottleneck", layers=(3, 4, 23, 3), ibn_cfg=_IBN_B)


@register_model
def resnet152_ibn_b(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNet-152-IBN-b (no released weights)."""
    return _resnet("resnet152_ibn_b", pretrained, kwargs, block="bottleneck", layers=(3, 8, 36, 3), ibn_cfg=_IBN_B)


@register_model
def resnext50_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNeXt-50 (32x4d)-IBN-a (no released weights)."""
    return _resnet("resnext50_ibn_a", pretrained, kwargs, block="bottleneck", layers=(3, 4, 6, 3), ibn_cfg=_IBN_A,
                   cardinality=32, base_width=4)


@register_model
def resnext101_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """ResNeXt-101 (32x4d)-IBN-a."""
    return _resnet("resnext101_ibn_a", pretrained, kwargs, block="bottleneck", layers=(3, 4, 23, 3), ibn_cfg=_IBN_A,
                   cardinality=32, base_width=4)


@register_model
def se_resnet50_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """SE-ResNet-50-IBN-a (no released weights)."""
    return _resnet("se_resnet50_ibn_a", pretrained, kwargs, block="bottleneck", layers=(3, 4, 6, 3), ibn_cfg=_IBN_A,
                   se_reduction=16)


@register_model
def se_resnet101_ibn_a(pretrained: bool = False, **kwargs: Any) -> ResNetIBN:
    """SE-ResNet-101-IBN-a."""
    return _resnet("se_resnet101_ibn_a", pretrained, kwargs, block="bottleneck", layers=(3, 4, 23, 3), ibn_cfg=_IBN_A,
                   se_reduction=16)


def _densenet(variant: str, pretrained: bool, kwargs: Dict[str, Any], **arch: Any) -> DenseNetIBN:
    return _create_densenet(variant, pretrained, **{**arch, **kwargs})


@register_model
def densenet121_ibn_a(pretrained: bool = False, **kwargs: Any) -> DenseNetIBN:
    """DenseNet-121-IBN-a."""
    return _densenet("densenet121_ibn_a", pretrained, kwargs, growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64)


@register_model
def densenet169_ibn_a(pretrained: bool = False, **kwargs: Any) -> DenseNetIBN:
    """DenseNet-169-IBN-a."""
    return _densenet("densenet169_ibn_a", pretrained, kwargs, growth_rate=32, block_config=(6, 12, 32, 32), num_init_features=64)


@register_model
def densenet201_ibn_a(pretrained: bool = False, **kwargs: Any) -> DenseNetIBN:
    """DenseNet-201-IBN-a (no released weights)."""
    return _densenet("densenet201_ibn_a", pretrained, kwargs, growth_rate=32, block_config=(6, 12, 48, 32), num_init_features=64)


@register_model
def densenet161_ibn_a(pretrained: bool = False, **kwargs: Any) -> DenseNetIBN:
    """DenseNet-161-IBN-a (no released weights)."""
    return _densenet("densenet161_ibn_a", pretrained, kwargs, growth_rate=48, block_config=(6, 12, 36, 24), num_init_features=96)


# ---------------------------------------------------------------------------------------------- reference vectors
def _block_kind(name: Any) -> str:
    name = str(name).lower()
    return "basic" if "basic" in name else "bottleneck"


def _reference_resnet(config: dict, meta: dict) -> nn.Module:
    """The authors' ResNet_IBN (width-parameterised, see the files' notes), ResNeXt_IBN or SE ResNet_IBN."""
    return ResNetIBN(
        block=_block_kind(config.get("block", "bottleneck")),
        layers=tuple(config["layers"]),
        ibn_cfg=tuple(config.get("ibn_cfg", _IBN_A)),
        widths=tuple(config.get("widths", (64, 128, 256, 512))),
        cardinality=int(config.get("cardinality", 1)),
        base_width=int(config.get("baseWidth", config.get("base_width", 64))),
        se_reduction=config.get("reduction", 16 if config.get("se") else None),
        num_classes=int(config.get("num_classes", 1000)),
    )


for _family in ("ibnnet_resnet_ibna", "ibnnet_resnet_ibnb", "ibnnet_resnext", "ibnnet_se_resnet"):
    register_reference(_family)(_reference_resnet)


@register_reference("ibnnet_densenet")
def _reference_densenet(config: dict, meta: dict) -> nn.Module:
    """The authors' DenseNet_IBN(growth_rate, block_config, num_init_features, bn_size, drop_rate, num_classes)."""
    return DenseNetIBN(
        growth_rate=int(config.get("growth_rate", 32)),
        block_config=tuple(config.get("block_config", (6, 12, 24, 16))),
        num_init_features=int(config.get("num_init_features", 64)),
        bn_size=int(config.get("bn_size", 4)),
        proj_drop_rate=float(config.get("drop_rate", 0.0)),
        num_classes=int(config.get("num_classes", 1000)),
    )
