"""SimpleNet: a plain 13-layer CNN (conv3x3-BN-ReLU stacks, max pooling, global max pooling head).

Paper: "Lets keep it simple, Using simple architectures to outperform deeper and more complex
architectures", Hasanpour et al., arXiv:1608.06037.
Authors' code: https://github.com/Coderx7/SimpleNet (Caffe, the paper's code) and the authors' PyTorch
port https://github.com/Coderx7/SimpleNet_Pytorch (``imagenet/simplenet.py``), whose state-dict layout
is the one users have checkpoints in; this module keeps that layout exactly.

Layout of the authors' port (kept here so that their checkpoints load without renaming):
``features`` is ONE flat ``nn.Sequential``; every conv entry of a layer table adds
``Conv2d(bias=True), BatchNorm2d(momentum=0.05), ReLU`` and, only when the entry's dropout is not
``None`` (a rate of 0.0 still counts), a ``Dropout2d``; every pooling entry adds
``MaxPool2d(2), Dropout2d``. Hence the index of ``features.N`` depends on where the dropouts sit.
The stride "mode" overrides the stride of the first table entries (pooling entries are counted too).
Head: global max pooling -> dropout -> ``classifier`` (Linear).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import SelectAdaptivePool2d
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict
from archzoo.reference import register_reference

__all__ = ["SimpleNet", "checkpoint_filter_fn", "LAYER_TABLES", "NETWORKS", "STRIDE_MODES"]

# A layer table entry: (out channels | "p" for 2x2 max pooling, dropout rate | None, kernel size).
# dropout None = no Dropout2d module at all (this changes the key indices that follow).
Entry = Tuple[Union[int, str], Optional[float], int]

_P: Entry = ("p", 0.0, 2)


def _c(chs: int, drop: Optional[float] = 0.0, k: int = 3) -> Entry:
    return (chs, drop, k)


# Layer sizes of the authors' port (facts of the architecture). The CIFAR tables are the paper's
# network; "simplenetv1_imagenet*" are the ImageNet family of the port.
LAYER_TABLES: Dict[str, List[Entry]] = {
    "simplenetv1_imagenet": [
        _c(64), _c(128), _c(128), _c(128), _c(128), _c(128), _P,
        _c(256), _c(256), _c(256), _c(512), _P,
        _c(2048, k=1), _c(256, k=1), _c(256),
    ],
    "simplenetv1_imagenet_9m": [
        _c(128), _c(192), _c(192), _c(192), _c(192), _c(192), _P,
        _c(320), _c(320), _c(320), _c(640), _P,
        _c(2560, k=1), _c(320, k=1), _c(320),
    ],
    "simplenet_cifar_310k": [
        _c(64), _c(32), _c(32), _c(32, None), _P,
        _c(32), _c(32), _c(64, None), _P,
        _c(64), _c(64, None), _P,
        _c(128), _c(256, k=1), _c(64, None, 1), _P,
        _c(64, None),
    ],
    "simplenet_cifar_460k": [
        _c(32), _c(32), _c(32), _c(64, None), _P,
        _c(64), _c(64), _c(64, None), _P,
        _c(64), _c(64, None), _P,
        _c(96), _c(96, k=1), _c(96, None, 1), _P,
        _c(100, None),
    ],
    "simplenet_cifar_5m": [
        _c(64), _c(128), _c(128), _c(128, None), _P,
        _c(128), _c(128), _c(256, None), _P,
        _c(256), _c(256, None), _P,
        _c(512), _c(2048, k=1), _c(256, None, 1), _P,
        _c(256, None),
    ],
    # the port's early CIFAR model had one pooling too many (SimpleNet_Pytorch issue #5); kept only so
    # that those old checkpoints (and the authors' network_idx=5) can be built
    "simplenet_cifar_5m_extra_pool": [
        _c(64), _c(128), _c(128), _c(128, None), _P,
        _c(128), _c(128), _c(256, None), _P,
        _c(256), _c(256, None), _P,
        _c(512), _P, _c(2048, k=1), _c(256, None, 1), _P,
        _c(256, None),
    ],
}

# the authors' ``network_idx`` order
NETWORKS: Tuple[str, ...] = (
    "simplenetv1_imagenet", "simplenetv1_imagenet_9m", "simplenet_cifar_310k",
    "simplenet_cifar_460k", "simplenet_cifar_5m", "simplenet_cifar_5m_extra_pool",
)

# stride "modes": {table entry index: stride}; mode 0 keeps the table's strides (CIFAR)
STRIDE_MODES: Dict[int, Dict[int, int]] = {
    0: {},
    1: {0: 2, 1: 2, 2: 2},
    2: {0: 2, 1: 2, 2: 1, 3: 2},
    3: {0: 2, 1: 2, 2: 1, 3: 1, 4: 2},
    4: {0: 2, 1: 1, 2: 2, 3: 1, 4: 2, 5: 1},
}

# the authors read the head's dropout from drop_rates[15] (table index 15)
_HEAD_DROP_INDEX = 15


class SimpleNet(nn.Module):
    """SimpleNet (v1) with the authors' flat ``features`` Sequential and ``classifier`` Linear.

    Args:
        arch: name of the layer table (see ``LAYER_TABLES``).
        num_classes: classifier outputs (0 = no classifier).
        in_chans: input channels.
        scale: width multiplier (channels = round(c * scale), as the authors).
        mode: stride mode 0-4 (see ``STRIDE_MODES``).
        drop_rates: per table-entry dropout overrides (the authors' ``drop_rates``); an override on an
            entry whose table dropout is None adds a Dropout2d module there (and shifts key indices).
        drop_rate: head dropout; default ``drop_rates.get(15, 0)`` as the authors.
        global_pool: head pooling ('max' as the paper; any timm SelectAdaptivePool2d type).
    """

    def __init__(
            self,
            arch: str = "simplenetv1_imagenet",
            num_classes: int = 1000,
            in_chans: int = 3,
            scale: float = 1.0,
            mode: int = 2,
            drop_rates: Optional[Dict[int, float]] = None,
            drop_rate: Optional[float] = None,
            global_pool: str = "max",
    ) -> None:
        super().__init__()
        if arch not in LAYER_TABLES:
            raise ValueError(f"unknown SimpleNet layer table {arch!r}; choose from {sorted(LAYER_TABLES)}")
        if mode not in STRIDE_MODES:
            raise ValueError(f"SimpleNet stride mode must be one of {sorted(STRIDE_MODES)}, got {mode}")
        self.arch, self.scale, self.mode = arch, scale, mode
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.grad_checkpointing = False
        drop_rates = {int(k): float(v) for k, v in (drop_rates or {}).items()}
        self.drop_rate = float(drop_rates.get(_HEAD_DROP_INDEX, 0.0) if drop_rate is None else drop_rate)

        strides = STRIDE_MODES[mode]
        layers: List[nn.Module] = []
        # stage ends: index of the last module before each downsampling op, plus the last module
        self._stage_ends: List[int] = []
        self.feature_info: List[Dict[str, Any]] = []
        chs, reduction = in_chans, 1
        for idx, (kind, table_drop, k) in enumerate(LAYER_TABLES[arch]):
            stride = strides.get(idx, 2 if kind == "p" else 1)
            drop = drop_rates.get(idx, table_drop)
            if stride > 1 and layers:
                self._add_stage_end(len(layers) - 1, chs, reduction)
            if kind == "p":
                layers += [nn.MaxPool2d(kernel_size=2, stride=stride), nn.Dropout2d(p=float(drop or 0.0))]
            else:
                out = round(int(kind) * scale)
                layers += [
                    nn.Conv2d(chs, out, kernel_size=k, stride=stride, padding=k // 2),
                    nn.BatchNorm2d(out, eps=1e-5, momentum=0.05),
                    nn.ReLU(inplace=True),
                ]
                if drop is not None:
                    layers.append(nn.Dropout2d(p=float(drop)))
                chs = out
            reduction *= stride
        self._add_stage_end(len(layers) - 1, chs, reduction)
        self.features = nn.Sequential(*layers)

        self.num_features = self.head_hidden_size = chs
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=True)
        self.head_drop = nn.Dropout(self.drop_rate)  # = the authors' dropout2d on the pooled 1x1 map
        self.classifier = nn.Linear(chs, num_classes) if num_classes > 0 else nn.Identity()

        for m in self.features.modules():  # the authors' init
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("relu"))

    def _add_stage_end(self, index: int, chs: int, reduction: int) -> None:
        if self._stage_ends and self._stage_ends[-1] == index:
            return
        self._stage_ends.append(index)
        self.feature_info.append(dict(num_chs=chs, reduction=reduction, module=f"features.{index}"))

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict[str, Any]:
        return dict(stem=r"^features\.0$", blocks=r"^features\.(\d+)")

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

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: Optional[Union[int, List[int]]] = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Outputs at the end of each resolution stage (see ``feature_info``)."""
        assert output_fmt == "NCHW", "Output shape must be NCHW."
        take_indices, max_index = feature_take_indices(len(self._stage_ends), indices)
        take = {self._stage_ends[i] for i in take_indices}
        last = self._stage_ends[max_index] if stop_early else len(self.features) - 1
        intermediates = []
        for i, module in enumerate(self.features):
            if i > last:
                break
            x = module(x)
            if i in take:
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
        take_indices, max_index = feature_take_indices(len(self._stage_ends), indices)
        self.features = self.features[: self._stage_ends[max_index] + 1]
        self._stage_ends = self._stage_ends[: max_index + 1]
        self.feature_info = self.feature_info[: max_index + 1]
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.features, x)
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        x = self.head_drop(x)
        return x if pre_logits else self.classifier(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict: Dict[str, torch.Tensor], model: nn.Module) -> Dict[str, torch.Tensor]:
    """The authors' port already uses this module's key names; only unwrap common containers."""
    return unwrap_state_dict(state_dict, wrapper_keys=("state_dict", "model"))


def _create_simplenet(variant: str, pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    return build_model_with_cfg(
        SimpleNet, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(feature_cls="getter", out_indices=(0, 1, 2, 3, 4)),
        **kwargs,
    )


_RELEASES = "https://github.com/Coderx7/SimpleNet_Pytorch/releases/download/v1.0.0/"


def _cfg(file: str = "", **kwargs: Any) -> Dict[str, Any]:
    # weights are the authors' .pth files (pickles): archzoo never downloads them implicitly, so the
    # address is recorded as origin_url only; load them with `archzoo` checkpoint loading after conversion
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (1, 1),
        "crop_pct": 0.875, "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "features.0", "classifier": "classifier",
        "origin_url": (_RELEASES + file) if file else "https://github.com/Coderx7/SimpleNet_Pytorch",
        "paper_ids": "arXiv:1608.06037", "license": "mit",
        **kwargs,
    }


_CIFAR = dict(num_classes=10, input_size=(3, 32, 32), crop_pct=1.0, interpolation="bilinear",
              mean=(0.4914, 0.4822, 0.4465), std=(0.2470, 0.2435, 0.2616))

default_cfgs = generate_default_cfgs({
    "simplenet_cifar_310k.untrained": _cfg(**_CIFAR),
    "simplenet_cifar_460k.untrained": _cfg(**_CIFAR),
    "simplenet_cifar_5m.untrained": _cfg(**_CIFAR),
    "simplenetv1_small_m1_05.in1k": _cfg("simplenetv1_small_m1_05-be804903.pth"),
    "simplenetv1_small_m2_05.in1k": _cfg("simplenetv1_small_m2_05-ca4b3e2b.pth"),
    "simplenetv1_small_m1_075.in1k": _cfg("simplenetv1_small_m1_075-098acbff.pth"),
    "simplenetv1_small_m2_075.in1k": _cfg("simplenetv1_small_m2_075-609ff4da.pth"),
    "simplenetv1_5m_m1.in1k": _cfg("simplenetv1_5m_m1-36c4ca4d.pth"),
    "simplenetv1_5m_m2.in1k": _cfg("simplenetv1_5m_m2-9bd6bb36.pth"),
    "simplenetv1_9m_m1.in1k": _cfg("simplenetv1_9m_m1-524f9972.pth"),
    "simplenetv1_9m_m2.in1k": _cfg("simplenetv1_9m_m2-59e8733b.pth"),
})


def _fixed(kwargs: Dict[str, Any], **arch: Any) -> Dict[str, Any]:
    # a named variant fixes its table/scale/mode (the authors drop these kwargs the same way)
    return {**{k: v for k, v in kwargs.items() if k not in ("arch", "scale", "mode")}, **arch}


# --- CIFAR (the paper's network; 32x32 input, 10 classes by default) ---
@register_model
def simplenet_cifar_5m(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNet of the paper for CIFAR (13 layers, 5.5 M params with 10 classes)."""
    return _create_simplenet("simplenet_cifar_5m", pretrained, **_fixed(kwargs, arch="simplenet_cifar_5m", mode=0))


@register_model
def simplenet_cifar_310k(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """Slim CIFAR SimpleNet of the paper (about 310 K params)."""
    return _create_simplenet("simplenet_cifar_310k", pretrained, **_fixed(kwargs, arch="simplenet_cifar_310k", mode=0))


@register_model
def simplenet_cifar_460k(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """Slim CIFAR SimpleNet of the paper (the authors call it 460k; the port counts 386 K)."""
    return _create_simplenet("simplenet_cifar_460k", pretrained, **_fixed(kwargs, arch="simplenet_cifar_460k", mode=0))


# --- ImageNet family of the authors' port ---
@register_model
def simplenetv1_small_m1_05(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-5m at 0.5x width, stride mode 1 (1.5 M params)."""
    return _create_simplenet("simplenetv1_small_m1_05", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet", scale=0.5, mode=1))


@register_model
def simplenetv1_small_m2_05(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-5m at 0.5x width, stride mode 2 (1.5 M params)."""
    return _create_simplenet("simplenetv1_small_m2_05", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet", scale=0.5, mode=2))


@register_model
def simplenetv1_small_m1_075(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-5m at 0.75x width, stride mode 1 (3.3 M params)."""
    return _create_simplenet("simplenetv1_small_m1_075", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet", scale=0.75, mode=1))


@register_model
def simplenetv1_small_m2_075(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-5m at 0.75x width, stride mode 2 (3.3 M params)."""
    return _create_simplenet("simplenetv1_small_m2_075", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet", scale=0.75, mode=2))


@register_model
def simplenetv1_5m_m1(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-5m, stride mode 1 (5.75 M params)."""
    return _create_simplenet("simplenetv1_5m_m1", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet", scale=1.0, mode=1))


@register_model
def simplenetv1_5m_m2(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-5m, stride mode 2 (5.75 M params)."""
    return _create_simplenet("simplenetv1_5m_m2", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet", scale=1.0, mode=2))


@register_model
def simplenetv1_9m_m1(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-9m, stride mode 1 (9.5 M params)."""
    return _create_simplenet("simplenetv1_9m_m1", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet_9m", scale=1.0, mode=1))


@register_model
def simplenetv1_9m_m2(pretrained: bool = False, **kwargs: Any) -> SimpleNet:
    """SimpleNetV1-9m, stride mode 2 (9.5 M params)."""
    return _create_simplenet("simplenetv1_9m_m2", pretrained, **_fixed(kwargs, arch="simplenetv1_imagenet_9m", scale=1.0, mode=2))


# --- reference vectors: the authors' SimpleNet(num_classes, in_chans, scale, network_idx, mode, drop_rates) ---
def _reference_build(config: dict, meta: dict) -> nn.Module:
    return SimpleNet(
        arch=NETWORKS[int(config.get("network_idx", 0))],
        num_classes=int(config.get("num_classes", 1000)),
        in_chans=int(config.get("in_chans", 3)),
        scale=float(config.get("scale", 1.0)),
        mode=int(config.get("mode", 2)),
        drop_rates=config.get("drop_rates") or None,
    )


register_reference("simplenet_cifar")(_reference_build)
register_reference("simplenet_imagenet")(_reference_build)
