"""Inception-ResNet-v1: the smaller residual Inception network of the Inception-v4 paper.

Paper: "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning", Szegedy et al.,
arXiv:1602.07261. Schema in Figure 15 (stem -> 5 x Inception-ResNet-A -> Reduction-A -> 10 x
Inception-ResNet-B -> Reduction-B -> 5 x Inception-ResNet-C -> average pooling -> dropout (keep 0.8)
-> softmax); stem in Figure 14, blocks in Figures 10 (A), 11 (B), 13 (C), Reduction-A in Figure 7 with
Table 1's k, l, m, n = 192, 192, 256, 384, Reduction-B in Figure 12. The authors released no
Inception-ResNet-v1 code or weights (TF-slim has Inception-v4 and Inception-ResNet-v2 only).

The block style is that of timm's ``inception_resnet_v2`` (the TF-slim port): conv-BN(eps 1e-3)-ReLU
units (timm's :class:`ConvNormAct`), a linear 1x1 conv with bias closing every residual branch, the
residual branch scaled before the sum (Section 3.3), ReLU after the sum. The blocks here are that
design with the widths as arguments, so that the same classes at Inception-ResNet-v2's widths are
timm's ``Block35`` / ``Mixed_6a`` / ``Block17`` / ``Mixed_7a`` / ``Block8`` key for key (see the tests), and
at the paper's Inception-ResNet-v1 widths give the v1 blocks. The paper gives the scaling only as
"between 0.1 and 0.3"; the values of TF-slim's Inception-ResNet-v2 (0.17, 0.10, 0.20) are used.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import torch
from torch import nn

from timm.data import IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD
from timm.layers import ConvNormAct, create_classifier, get_device_dtype
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._registry import generate_default_cfgs

from archzoo.checkpoint import unwrap_state_dict

__all__ = [
    "InceptionResnetA", "InceptionResnetB", "InceptionResnetC", "ReductionA", "ReductionB",
    "InceptionResnetV1", "checkpoint_filter_fn", "V1_WIDTHS",
]

ConvBlock = Callable[..., nn.Module]


def _chain(conv_block: ConvBlock, in_chs: int, widths: Sequence[int], kernels: Sequence[Any],
           last_stride: int = 1, **dd: Any) -> nn.Sequential:
    """A branch: conv units with the given widths and kernels; 'same' padding except a strided last conv."""
    layers = []
    for i, (w, k) in enumerate(zip(widths, kernels)):
        k2 = (k, k) if isinstance(k, int) else tuple(k)
        last = i == len(widths) - 1
        stride = last_stride if last else 1
        pad = (0, 0) if stride > 1 else (k2[0] // 2, k2[1] // 2)
        layers.append(conv_block(in_chs, w, kernel_size=k2 if k2[0] != k2[1] else k2[0], stride=stride,
                                 padding=pad if pad[0] != pad[1] else pad[0], **dd))
        in_chs = w
    return nn.Sequential(*layers)


class _ResidualInception(nn.Module):
    """Concatenated branches -> linear 1x1 conv back to the input width -> x + scale * branch -> ReLU."""

    def _residual(self, x: torch.Tensor, branches: list[torch.Tensor]) -> torch.Tensor:
        out = self.conv2d(torch.cat(branches, 1))
        out = out * self.scale + x
        return out if self.act is None else self.act(out)


class InceptionResnetA(_ResidualInception):
    """35 x 35 block (paper Fig. 10 / Fig. 16): 1x1 | 1x1-3x3 | 1x1-3x3-3x3 -> 1x1 linear."""

    def __init__(self, in_chs: int, b0: int, b1: Sequence[int], b2: Sequence[int], scale: float = 1.0,
                 conv_block: ConvBlock = ConvNormAct, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scale = scale
        self.branch0 = conv_block(in_chs, b0, kernel_size=1, stride=1, **dd)
        self.branch1 = _chain(conv_block, in_chs, b1, (1, 3), **dd)
        self.branch2 = _chain(conv_block, in_chs, b2, (1, 3, 3), **dd)
        self.conv2d = nn.Conv2d(b0 + b1[-1] + b2[-1], in_chs, kernel_size=1, stride=1, **dd)
        self.act: nn.Module | None = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._residual(x, [self.branch0(x), self.branch1(x), self.branch2(x)])


class InceptionResnetB(_ResidualInception):
    """17 x 17 block (paper Fig. 11 / Fig. 17): 1x1 | 1x1-1x7-7x1 -> 1x1 linear."""

    def __init__(self, in_chs: int, b0: int, b1: Sequence[int], scale: float = 1.0,
                 conv_block: ConvBlock = ConvNormAct, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scale = scale
        self.branch0 = conv_block(in_chs, b0, kernel_size=1, stride=1, **dd)
        self.branch1 = _chain(conv_block, in_chs, b1, (1, (1, 7), (7, 1)), **dd)
        self.conv2d = nn.Conv2d(b0 + b1[-1], in_chs, kernel_size=1, stride=1, **dd)
        self.act: nn.Module | None = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._residual(x, [self.branch0(x), self.branch1(x)])


class InceptionResnetC(_ResidualInception):
    """8 x 8 block (paper Fig. 13 / Fig. 19): 1x1 | 1x1-1x3-3x1 -> 1x1 linear (``no_relu``: TF-slim's
    last Inception-ResNet-v2 block)."""

    def __init__(self, in_chs: int, b0: int, b1: Sequence[int], scale: float = 1.0, no_relu: bool = False,
                 conv_block: ConvBlock = ConvNormAct, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.scale = scale
        self.branch0 = conv_block(in_chs, b0, kernel_size=1, stride=1, **dd)
        self.branch1 = _chain(conv_block, in_chs, b1, (1, (1, 3), (3, 1)), **dd)
        self.conv2d = nn.Conv2d(b0 + b1[-1], in_chs, kernel_size=1, stride=1, **dd)
        self.act: nn.Module | None = None if no_relu else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._residual(x, [self.branch0(x), self.branch1(x)])


class ReductionA(nn.Module):
    """35 -> 17 reduction (paper Fig. 7, Table 1's k, l, m, n): 3x3/2 (n) | 1x1 (k)-3x3 (l)-3x3/2 (m) | max-pool."""

    def __init__(self, in_chs: int, k: int, l: int, m: int, n: int, conv_block: ConvBlock = ConvNormAct,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.branch0 = conv_block(in_chs, n, kernel_size=3, stride=2, **dd)
        self.branch1 = _chain(conv_block, in_chs, (k, l, m), (1, 3, 3), last_stride=2, **dd)
        self.branch2 = nn.MaxPool2d(3, stride=2)
        self.out_chs = n + m + in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class ReductionB(nn.Module):
    """17 -> 8 reduction (paper Fig. 12 / Fig. 18): 1x1-3x3/2 | 1x1-3x3/2 | 1x1-3x3-3x3/2 | max-pool."""

    def __init__(self, in_chs: int, b0: Sequence[int], b1: Sequence[int], b2: Sequence[int],
                 conv_block: ConvBlock = ConvNormAct, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.branch0 = _chain(conv_block, in_chs, b0, (1, 3), last_stride=2, **dd)
        self.branch1 = _chain(conv_block, in_chs, b1, (1, 3), last_stride=2, **dd)
        self.branch2 = _chain(conv_block, in_chs, b2, (1, 3, 3), last_stride=2, **dd)
        self.branch3 = nn.MaxPool2d(3, stride=2)
        self.out_chs = b0[-1] + b1[-1] + b2[-1] + in_chs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)), 1)


# Inception-ResNet-v1 widths from the paper's figures (stem Fig. 14, A Fig. 10, Reduction-A Table 1,
# B Fig. 11, Reduction-B Fig. 12, C Fig. 13) and its block counts (Fig. 15).
V1_WIDTHS: dict[str, Any] = dict(
    stem=(32, 32, 64, 80, 192, 256),
    block_a=dict(b0=32, b1=(32, 32), b2=(32, 32, 32)),
    reduction_a=dict(k=192, l=192, m=256, n=384),
    block_b=dict(b0=128, b1=(128, 128, 128)),
    reduction_b=dict(b0=(256, 384), b1=(256, 256), b2=(256, 256, 256)),
    block_c=dict(b0=192, b1=(192, 192, 192)),
    depths=(5, 10, 5),
    scales=(0.17, 0.10, 0.20),
)


class InceptionResnetV1(nn.Module):
    """Inception-ResNet-v1 (paper Fig. 15); module names follow timm's ``InceptionResnetV2``."""

    def __init__(
            self,
            num_classes: int = 1000,
            in_chans: int = 3,
            drop_rate: float = 0.2,
            global_pool: str = "avg",
            widths: dict[str, Any] | None = None,
            norm_eps: float = 1e-3,
            device: Any = None,
            dtype: Any = None,
    ) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        w = dict(V1_WIDTHS, **(widths or {}))
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.min_input_size = 75  # smallest side that survives the VALID convs and poolings
        conv_block = partial(ConvNormAct, padding=0, norm_layer="batchnorm2d", act_layer="relu",
                             norm_kwargs=dict(eps=norm_eps), act_kwargs=dict(inplace=True))
        s = w["stem"]
        # stem, paper Fig. 14 (V = valid padding)
        self.conv2d_1a = conv_block(in_chans, s[0], kernel_size=3, stride=2, **dd)   # 149 x 149 x 32, V
        self.conv2d_2a = conv_block(s[0], s[1], kernel_size=3, stride=1, **dd)       # 147 x 147 x 32, V
        self.conv2d_2b = conv_block(s[1], s[2], kernel_size=3, stride=1, padding=1, **dd)  # 147 x 147 x 64
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)                                   # 73 x 73 x 64, V
        self.conv2d_3b = conv_block(s[2], s[3], kernel_size=1, stride=1, **dd)       # 73 x 73 x 80
        self.conv2d_4a = conv_block(s[3], s[4], kernel_size=3, stride=1, **dd)       # 71 x 71 x 192, V
        self.conv2d_4b = conv_block(s[4], s[5], kernel_size=3, stride=2, **dd)       # 35 x 35 x 256, V
        d_a, d_b, d_c = w["depths"]
        sc_a, sc_b, sc_c = w["scales"]
        chs = s[5]
        self.repeat = nn.Sequential(*[InceptionResnetA(chs, **w["block_a"], scale=sc_a, conv_block=conv_block, **dd)
                                      for _ in range(d_a)])
        self.mixed_6a = ReductionA(chs, **w["reduction_a"], conv_block=conv_block, **dd)
        chs_a = chs
        chs = self.mixed_6a.out_chs                                                   # 17 x 17 x 896
        self.repeat_1 = nn.Sequential(*[InceptionResnetB(chs, **w["block_b"], scale=sc_b, conv_block=conv_block, **dd)
                                        for _ in range(d_b)])
        chs_b = chs
        self.mixed_7a = ReductionB(chs, **w["reduction_b"], conv_block=conv_block, **dd)
        chs = self.mixed_7a.out_chs                                                   # 8 x 8 x 1792
        self.repeat_2 = nn.Sequential(*[InceptionResnetC(chs, **w["block_c"], scale=sc_c, conv_block=conv_block, **dd)
                                        for _ in range(d_c)])
        self.num_features = self.head_hidden_size = chs
        self.feature_info = [
            dict(num_chs=s[2], reduction=2, module="conv2d_2b"),
            dict(num_chs=s[4], reduction=4, module="conv2d_4a"),
            dict(num_chs=chs_a, reduction=8, module="repeat"),
            dict(num_chs=chs_b, reduction=16, module="repeat_1"),
            dict(num_chs=chs, reduction=32, module="repeat_2"),
        ]
        self.layer_names = ["conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a",
                            "conv2d_4b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "repeat_2"]
        self.feature_ends = [self.layer_names.index(f["module"]) for f in self.feature_info]
        self.global_pool, self.head_drop, self.classif = create_classifier(
            self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^conv2d_|^maxpool_",
                    blocks=[(r"^repeat\.(\d+)", None), (r"^mixed_6a", (99,)), (r"^repeat_1\.(\d+)", None),
                            (r"^mixed_7a", (199,)), (r"^repeat_2\.(\d+)", None)])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        assert not enable, "checkpointing not supported"

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return set()

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classif

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        pool = self.global_pool.pool_type if global_pool is None else global_pool
        self.global_pool, self.classif = create_classifier(
            self.num_features, num_classes, pool_type=pool, **get_device_dtype(self))

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Outputs of conv2d_2b, conv2d_4a and the three block stacks (strides 2, 4, 8, 16, 32)."""
        if output_fmt != "NCHW":
            raise ValueError("output_fmt must be 'NCHW'")
        take, max_index = feature_take_indices(len(self.feature_ends), indices)
        names = self.layer_names[: self.feature_ends[max_index] + 1] if stop_early or intermediates_only \
            else self.layer_names
        out = []
        for i, n in enumerate(names):
            x = getattr(self, n)(x)
            if i in self.feature_ends and self.feature_ends.index(i) in take:
                out.append(x)
        return out if intermediates_only else (x, out)

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take, max_index = feature_take_indices(len(self.feature_ends), indices)
        keep = self.feature_ends[max_index] + 1
        for n in self.layer_names[keep:]:
            setattr(self, n, nn.Identity())
        if keep < len(self.layer_names):
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or keep < len(self.layer_names):
            self.reset_classifier(0, "")
        return take

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for n in self.layer_names:
            x = getattr(self, n)(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.global_pool(x))
        return x if pre_logits else self.classif(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """No authors' weights exist; accept this module's (timm-style) layout, unwrapping common wrappers."""
    return unwrap_state_dict(state_dict, wrapper_keys=("model", "state_dict_ema", "state_dict"))


default_cfgs = generate_default_cfgs({
    "inception_resnet_v1": {
        "url": "", "num_classes": 1000, "input_size": (3, 299, 299), "pool_size": (8, 8), "crop_pct": 0.8975,
        "interpolation": "bicubic", "mean": IMAGENET_INCEPTION_MEAN, "std": IMAGENET_INCEPTION_STD,
        "first_conv": "conv2d_1a.conv", "classifier": "classif", "min_input_size": (3, 75, 75),
        "paper_ids": "arXiv:1602.07261",
    },
})


@register_model
def inception_resnet_v1(pretrained: bool = False, **kwargs: Any) -> InceptionResnetV1:
    """Inception-ResNet-v1 (paper Fig. 15), 299 x 299, 1792 features."""
    return build_model_with_cfg(InceptionResnetV1, "inception_resnet_v1", pretrained,
                                pretrained_filter_fn=checkpoint_filter_fn,
                                feature_cfg=dict(flatten_sequential=True), **kwargs)
