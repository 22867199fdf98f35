"""SN-Netv2: stitched DeiT-III anchors with two-way, low-rank stitching layers (Pan et al., "Stitched
ViTs are Flexible Vision Backbones", arXiv 2307.00154).

Authors' code: https://github.com/ziplab/SN-Netv2 (``classification/snnet.py`` for ``SNNetv2``,
``classification/models_v2.py`` for the DeiT-III anchors), followed at commit dd17607; their
checkpoints load through :func:`checkpoint_filter_fn`.

One network holds two pretrained ViTs (anchors, small first) and light stitching layers between
them; :meth:`SNNetv2.set_stitch` selects one of the stitch configurations at run time (no rebuild):
- ``comb_id [0]`` / ``[1]``: an anchor alone;
- small->large ``[0, 1]``, large->small ``[1, 0]``, and the three-segment routes ``[1, 0, 1]`` and
  ``[0, 1, 0]`` of v2. A route segment ``[begin, end]`` runs the blocks ``begin..end`` INCLUSIVE
  (the authors' ``selective_forward``), then the segment's stitching layer; the class token and
  position embedding come from the first anchor, the final norm and head from the last one.

Details kept from the authors' code:
- anchors are DeiT-III ``vit_models`` with ``Layer_scale_init_Block``: layer scale (init 1e-4),
  the position embedding added to the patch tokens before the class token is prepended, LayerNorm
  eps 1e-6, constant (not linearly increasing) stochastic depth; here timm's VisionTransformer
  (``no_embed_class=True``; ``gamma_1/2`` are renamed ``ls1/2.gamma`` by the checkpoint filter);
- configuration ids, their order and their stitching-layer ids are the authors' (the FLOPs tables
  and checkpoints index them); the list of configurations sampled in training leaves out the
  small->large stitch whose front block is 11, a literal the authors hard-code for 12-block anchors;
- a stitching layer is ``Linear(d_front, d_end)`` plus a LoRA update ``B @ A * alpha / r`` (alpha 1,
  B zero-initialised, the base weight frozen when r > 0). The authors merge the update into the weight
  in place on ``.eval()`` (and subtract it on ``.train()``); here the update is never merged into the
  parameters, so outputs and the state dict are the same in both modes and the authors' (unmerged)
  checkpoints load as they are. :meth:`SNNetv2.merged_stitching_layers` gives their deploy form
  (one linear per stitch, merged weights cached outside the parameters) for inference and FLOPs;
- least-squares initialisation of every two-anchor stitch from anchor block features
  (:meth:`SNNetv2.initialize_stitching_weights`, the authors' ``ps_inv``);
- FLOPs-grouped sampling in training: configurations sorted by FLOPs are grouped with a gap of
  ``flops_gap`` G multiply-adds (the authors' fvcore "FLOPs"), a group is drawn uniformly (or with the
  authors' ``flops_sampling_k`` weights), then a configuration in it.
"""
from __future__ import annotations

import contextlib
import json
import math
from functools import partial
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, to_2tuple
from timm.models import build_model_with_cfg, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models._registry import generate_default_cfgs
from timm.models.vision_transformer import VisionTransformer

from archzoo.reference import register_reference
from archzoo.validation import InputRules

__all__ = [
    "SNNetv2", "DeiT3Anchor", "LoRALinear", "StitchingLayer", "stitch_configs", "stitch_config_flops",
    "group_configs_by_flops", "least_squares_stitch", "checkpoint_filter_fn", "DEIT3_ANCHORS",
]

# DeiT-III anchors of the paper (models_v2.deit_{small,base,large}_patch16_LS): embed dim, depth, heads.
DEIT3_ANCHORS: dict[str, dict[str, int]] = {
    "s": dict(embed_dim=384, depth=12, num_heads=6),
    "b": dict(embed_dim=768, depth=12, num_heads=12),
    "l": dict(embed_dim=1024, depth=24, num_heads=16),
}

# The authors list small->large stitches for training only when their front block is not 11
# (``front != 11`` in get_stitch_configs_bidirection, written for 12-block small anchors).
_AUTHORS_EXCLUDED_SL_FRONT = 11


# --------------------------------------------------------------------------- stitching space
def _nearest_map(src: int, dst: int) -> list[int]:
    """Block of the shallower anchor paired with each block of the deeper one: the authors use 1-D
    nearest interpolation; run the same torch op (on the CPU, also while a model builds on meta)."""
    ids = torch.arange(src, dtype=torch.float32, device="cpu")[None, None, :]
    return F.interpolate(ids, dst).reshape(-1).long().tolist()


def stitch_configs(depths: Sequence[int]) -> tuple[list[dict[str, Any]], tuple[int, int], dict[str, list[int]]]:
    """The v2 stitching space of two anchors with ``depths`` (small first), in the authors' order.

    Returns ``(configs, (n_small_to_large, n_large_to_small) stitching layers, ids by kind)`` where
    every config is a dict as the authors build it: ``comb_id`` (anchor per segment), and for stitched
    ones ``stitch_cfgs`` ([front block, end block] per stitch), ``stitch_layer_ids`` (per segment; the
    last is -1, the identity) and ``route`` ([begin, end] blocks per segment, both inclusive).
    ``kinds`` maps anchor/sl/ls/lsl/sls to their ids (sl without the authors' excluded front 11).
    """
    d0, d1 = int(depths[0]), int(depths[1])
    if d0 > d1:
        raise ValueError(f"anchors must be ordered shallow to deep (got depths {depths})")
    ratio = d1 // d0
    configs: list[dict[str, Any]] = [{"comb_id": [0]}, {"comb_id": [1]}]
    sl = [{"comb_id": [0, 1], "stitch_cfgs": [[i, (i + 1) * ratio]], "stitch_layer_ids": [i]} for i in range(d0)]
    end_map = _nearest_map(d0, d1)
    ls = []
    for i in range(d1):
        keep = (i % 2 == 1 and i < d1 - 1) if d1 != d0 else i < d1 - 1
        if keep:
            ls.append({"comb_id": [1, 0], "stitch_cfgs": [[i, end_map[i] + 1]], "stitch_layer_ids": [i // ratio]})
    if any(c["stitch_layer_ids"][0] >= len(ls) for c in ls):
        raise ValueError(f"depths {depths}: the authors' large->small stitch ids need depth ratio 1 or 2")
    lsl = [
        {"comb_id": [1, 0, 1], "stitch_cfgs": [a["stitch_cfgs"][0], b["stitch_cfgs"][0]],
         "stitch_layer_ids": a["stitch_layer_ids"] + b["stitch_layer_ids"]}
        for a in ls for b in sl
        if b["stitch_layer_ids"][0] != d0 - 1 and b["stitch_cfgs"][0][0] >= a["stitch_cfgs"][0][1]
    ]
    sls = [
        {"comb_id": [0, 1, 0], "stitch_cfgs": [a["stitch_cfgs"][0], b["stitch_cfgs"][0]],
         "stitch_layer_ids": a["stitch_layer_ids"] + b["stitch_layer_ids"]}
        for a in sl for b in ls if b["stitch_cfgs"][0][0] >= a["stitch_cfgs"][0][1]
    ]
    configs += sl + ls + lsl + sls
    kinds: dict[str, list[int]] = {"anchor": [0, 1], "sl": [], "ls": [], "lsl": [], "sls": []}
    for i, cfg in enumerate(configs):
        comb = cfg["comb_id"]
        if len(comb) == 1:
            continue
        stitches = cfg["stitch_cfgs"]
        route = [[0, stitches[0][0]]]
        if len(comb) == 3:
            route.append([stitches[0][1], stitches[1][0]])
        route.append([stitches[-1][1], (d0, d1)[comb[-1]]])
        cfg["route"] = route
        cfg["stitch_layer_ids"] = cfg["stitch_layer_ids"] + [-1]
        kind = {(0, 1): "sl", (1, 0): "ls", (1, 0, 1): "lsl", (0, 1, 0): "sls"}[tuple(comb)]
        if kind == "sl" and stitches[0][0] == _AUTHORS_EXCLUDED_SL_FRONT:
            continue
        kinds[kind].append(i)
    return configs, (len(sl), len(ls)), kinds


def group_configs_by_flops(flops: dict[int, float], gap: float = 1.0) -> list[list[int]]:
    """The authors' ``group_subnets_by_flops``: walk the configs by increasing FLOPs (``flops`` in the
    unit of ``gap``), open a new group whenever one is more than ``gap`` away from the group's first."""
    groups: list[list[int]] = []
    current: list[int] = []
    last = 0.0
    for cid, f in sorted(flops.items(), key=lambda kv: kv[1]):
        if abs(last - f) > gap:
            if current:
                groups.append(sorted(current))
            current, last = [int(cid)], f
        else:
            current.append(int(cid))
    if current:
        groups.append(sorted(current))
    return groups


def least_squares_stitch(front: torch.Tensor, end: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) of the affine map front-features -> end-features fitted by least squares over
    all tokens (the authors' ``ps_inv``: pseudo-inverse of the features with a ones column)."""
    x1 = front.reshape(-1, front.shape[-1]).double()
    x2 = end.reshape(-1, end.shape[-1]).double()
    if x1.shape[0] != x2.shape[0]:
        raise ValueError("front and end features need the same number of tokens")
    x1 = torch.cat([x1, torch.ones_like(x1[:, :1])], dim=1)
    sol = (torch.linalg.pinv(x1) @ x2).T  # (d_end, d_front + 1)
    return sol[:, :-1].to(front.dtype), sol[:, -1].to(front.dtype)


# --------------------------------------------------------------------------- layers
class LoRALinear(nn.Linear):
    """``y = x W^T + b + (x A^T B^T) * alpha / r``; with r > 0 the base weight is frozen (the authors'
    LoRA ``Linear``). The update is never merged into ``weight``: :meth:`cache_merged` stores the
    merged weight outside the parameters for a deploy-form forward (one matmul)."""

    def __init__(self, in_features: int, out_features: int, r: int = 0, alpha: float = 1.0, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.r = int(r)
        self.scaling = alpha / r if r > 0 else 0.0
        self._merged: torch.Tensor | None = None
        if r > 0:
            self.lora_A = nn.Parameter(torch.empty(r, in_features))
            self.lora_B = nn.Parameter(torch.empty(out_features, r))
            self.weight.requires_grad_(False)
            self.reset_lora_parameters()

    def reset_lora_parameters(self) -> None:
        """A as nn.Linear's default weight init, B zero (the update starts at zero)."""
        if self.r > 0:
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B)

    def merged_weight(self) -> torch.Tensor:
        if self.r == 0:
            return self.weight
        return self.weight + (self.lora_B @ self.lora_A) * self.scaling

    @torch.no_grad()
    def cache_merged(self, enable: bool = True) -> None:
        self._merged = self.merged_weight().detach() if enable and self.r > 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._merged is not None:
            return F.linear(x, self._merged, self.bias)
        out = F.linear(x, self.weight, self.bias)
        if self.r > 0:
            out = out + F.linear(F.linear(x, self.lora_A), self.lora_B) * self.scaling
        return out

    def extra_repr(self) -> str:
        return super().extra_repr() + f", r={self.r}"


class StitchingLayer(nn.Module):
    """Maps the tokens of one anchor into the width of the other (key ``transform`` as the authors)."""

    def __init__(self, in_features: int, out_features: int, r: int = 0, alpha: float = 1.0) -> None:
        super().__init__()
        self.transform = LoRALinear(in_features, out_features, r=r, alpha=alpha)

    @torch.no_grad()
    def init_stitch_weights_bias(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.transform.weight.copy_(weight)
        self.transform.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.transform(x)


def _default_device_is_meta() -> bool:
    return torch.empty(0).device.type == "meta"


class DeiT3Anchor(VisionTransformer):
    """A DeiT-III ViT (the authors' ``vit_models`` + ``Layer_scale_init_Block``) with the pieces a
    stitched forward needs: :meth:`embed`, :meth:`run_blocks` (inclusive range), the final norm and head."""

    def __init__(self, img_size: int | tuple[int, int] = 224, patch_size: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, embed_dim: int = 768, depth: int = 12, num_heads: int = 12, mlp_ratio: float = 4.0,
                 init_values: float = 1e-4, drop_rate: float = 0.0, attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
            global_pool="token", embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
            qkv_bias=True, init_values=init_values, class_token=True, no_embed_class=True,
            drop_rate=drop_rate, attn_drop_rate=attn_drop_rate, norm_layer=partial(nn.LayerNorm, eps=1e-6),
            weight_init="skip" if _default_device_is_meta() else "",
        )
        # the authors' stochastic depth is the same rate in every block
        for blk in self.blocks:
            blk.drop_path1 = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
            blk.drop_path2 = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Patch tokens + position embedding, then the class token prepended."""
        x = self._pos_embed(self.patch_embed(x))
        return self.norm_pre(self.patch_drop(x))

    def run_blocks(self, x: torch.Tensor, begin: int, end: int) -> torch.Tensor:
        """Blocks ``begin..end`` (inclusive; ``end`` past the last block runs to the end)."""
        for i in range(begin, min(end, len(self.blocks) - 1) + 1):
            blk = self.blocks[i]
            x = checkpoint(blk, x) if self.grad_checkpointing and not torch.jit.is_scripting() else blk(x)
        return x

    @torch.no_grad()
    def block_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Tokens (class token included) after every block (the authors' ``extract_block_features``)."""
        x, out = self.embed(x), []
        for blk in self.blocks:
            x = blk(x)
            out.append(x)
        return out


# --------------------------------------------------------------------------- model
class SNNetv2(nn.Module):
    """SN-Netv2 over two DeiT-III anchors (small first) with timm's interface.

    Args:
        anchors: two dicts of ``embed_dim``, ``depth``, ``num_heads`` (optionally ``mlp_ratio``,
            ``drop_path_rate``), shallow/narrow first.
        lora_r: LoRA rank of the stitching layers (64 in the authors' configs; 0 = plain linear).
        stitch_config: the configuration used in eval (and in training when ``sample_in_train`` is off).
        include: kinds of configurations sampled in training (the authors' include_sl/ls/lsl/sls).
        sample_in_train: in training mode every forward draws a configuration (FLOPs-grouped), as the
            authors' forward does; switch off to train one fixed configuration.
        flops_gap: width of a FLOPs group in G multiply-adds; flops_sampling_k: the authors'
            ``--flops_sampling_k`` group weights (None = uniform over groups).
    """

    def __init__(
            self,
            anchors: Sequence[dict[str, Any]] = (DEIT3_ANCHORS["s"], DEIT3_ANCHORS["b"]),
            img_size: int | tuple[int, int] = 224,
            patch_size: int = 16,
            in_chans: int = 3,
            num_classes: int = 1000,
            lora_r: int = 64,
            lora_alpha: float = 1.0,
            mlp_ratio: float = 4.0,
            init_values: float = 1e-4,
            drop_rate: float = 0.0,
            attn_drop_rate: float = 0.0,
            drop_path_rate: float | Sequence[float] = 0.0,
            stitch_config: int = 0,
            include: Sequence[str] = ("sl", "ls", "lsl", "sls"),
            sample_in_train: bool = True,
            flops_gap: float = 1.0,
            flops_sampling_k: float | None = None,
            global_pool: str = "token",
    ) -> None:
        super().__init__()
        if len(anchors) != 2:
            raise ValueError("SN-Netv2 stitches exactly two anchors")
        if global_pool != "token":
            raise ValueError("SN-Netv2 anchors classify the class token (global_pool='token')")
        anchors = [dict(a) for a in anchors]
        dprs = list(drop_path_rate) if isinstance(drop_path_rate, (list, tuple)) else [drop_path_rate] * 2
        # kept to rebuild a meta-device twin for FLOP counting
        self.build_args: dict[str, Any] = dict(
            anchors=anchors, img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes,
            lora_r=lora_r, lora_alpha=lora_alpha, mlp_ratio=mlp_ratio, init_values=init_values,
            include=tuple(include), flops_gap=flops_gap, flops_sampling_k=flops_sampling_k)
        self.anchors = nn.ModuleList([
            DeiT3Anchor(img_size, patch_size, in_chans, num_classes, embed_dim=a["embed_dim"], depth=a["depth"],
                        num_heads=a["num_heads"], mlp_ratio=a.get("mlp_ratio", mlp_ratio), init_values=init_values,
                        drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                        drop_path_rate=a.get("drop_path_rate", dprs[i]))
            for i, a in enumerate(anchors)
        ])
        self.depths = [len(a.blocks) for a in self.anchors]
        configs, n_stitch, kinds = stitch_configs(self.depths)
        dims = [a.embed_dim for a in self.anchors]
        # stitch_layers[0]: small -> large, stitch_layers[1]: large -> small; each list ends with Identity
        self.stitch_layers = nn.ModuleList()
        for front, end in ((0, 1), (1, 0)):
            layers = nn.ModuleList([StitchingLayer(dims[front], dims[end], r=lora_r, alpha=lora_alpha)
                                    for _ in range(n_stitch[front])])
            layers.append(nn.Identity())
            self.stitch_layers.append(layers)
        self.stitch_configs: dict[int, dict[str, Any]] = dict(enumerate(configs))
        self.config_kinds = kinds
        unknown = set(include) - {"sl", "ls", "lsl", "sls"}
        if unknown:
            raise ValueError(f"unknown stitch kinds {sorted(unknown)}")
        self.train_configs: list[int] = kinds["anchor"] + [i for k in ("sl", "ls", "lsl", "sls") if k in include
                                                           for i in kinds[k]]
        self.num_classes, self.in_chans, self.global_pool = num_classes, in_chans, global_pool
        self.num_prefix_tokens = 1
        self.img_size = to_2tuple(img_size)
        self.sample_in_train = sample_in_train
        self.flops_gap, self.flops_sampling_k = flops_gap, flops_sampling_k
        self._flops_groups: list[list[int]] | None = None
        self.last_config_id: int | None = None
        self.stitch_config_id = 0
        self.set_stitch(stitch_config)

    @property
    def input_rules(self) -> InputRules:
        return InputRules(
            channels=self.in_chans, min_size=min(self.img_size), min_size_reason="the size it was built for",
            fixed_size=self.img_size,
            fixed_size_reason="its DeiT-III anchors' patch embeddings and position embeddings are sized for it; "
                              "create it with img_size= for another size")

    # ---- configuration selection
    @property
    def num_configs(self) -> int:
        return len(self.stitch_configs)

    def set_stitch(self, config_id: int) -> None:
        """Select the stitch configuration used from now on (the authors' ``reset_stitch_id``)."""
        config_id = int(config_id)
        if config_id not in self.stitch_configs:
            raise ValueError(f"stitch configuration {config_id} does not exist (0..{self.num_configs - 1})")
        self.stitch_config_id = config_id

    reset_stitch_id = set_stitch

    def _plan(self, config_id: int) -> tuple[list[int], list[list[int]], list[int]]:
        """(anchor per segment, inclusive block range per segment, stitching layer after each)."""
        cfg = self.stitch_configs[config_id]
        comb = cfg["comb_id"]
        if len(comb) == 1:
            return comb, [[0, self.depths[comb[0]] - 1]], [-1]
        return comb, cfg["route"], cfg["stitch_layer_ids"]

    def end_anchor(self, config_id: int | None = None) -> DeiT3Anchor:
        cid = self.stitch_config_id if config_id is None else config_id
        return self.anchors[self.stitch_configs[cid]["comb_id"][-1]]

    @property
    def num_features(self) -> int:
        """Width of the tokens the current configuration's head sees."""
        return self.end_anchor().embed_dim

    @property
    def head_hidden_size(self) -> int:
        return self.num_features

    # ---- FLOPs-grouped sampling (training)
    def set_flops_groups(self, groups: list[list[int]]) -> None:
        self._flops_groups = [list(map(int, g)) for g in groups]

    def flops_groups(self) -> list[list[int]]:
        """Training configurations grouped by FLOPs (counted once on the meta device, then cached)."""
        if self._flops_groups is None:
            flops = stitch_config_flops(self, config_ids=self.train_configs)
            self._flops_groups = group_configs_by_flops({k: v / 2e9 for k, v in flops.items()}, self.flops_gap)
        return self._flops_groups

    def group_probs(self) -> torch.Tensor:
        n = len(self.flops_groups())
        if self.flops_sampling_k:
            p = torch.tensor([i / self.flops_sampling_k + 1 / n for i in range(n)], dtype=torch.float64, device="cpu")
        else:
            p = torch.ones(n, dtype=torch.float64, device="cpu")
        return p / p.sum()

    def sample_config(self, generator: torch.Generator | None = None) -> int:
        """Draw a FLOPs group (uniformly or with the flops_sampling_k weights), then a config in it."""
        groups = self.flops_groups()
        g = groups[int(torch.multinomial(self.group_probs(), 1, generator=generator))]
        return g[int(torch.randint(len(g), (1,), generator=generator, device="cpu"))]

    # ---- stitching-layer utilities
    @torch.no_grad()
    def initialize_stitching_weights(self, x: torch.Tensor) -> None:
        """Least-squares fit of every two-anchor stitch (weight and bias) from anchor block features on
        the batch ``x``: the front block's tokens -> the tokens entering the end anchor's next block.
        Features are taken in eval mode (no stochastic depth)."""
        was_training = self.training
        self.eval()
        feats = [a.block_features(x) for a in self.anchors]
        for cfg in self.stitch_configs.values():
            if len(cfg["comb_id"]) != 2:
                continue
            (front, end), sid, (a0, a1) = cfg["stitch_cfgs"][0], cfg["stitch_layer_ids"][0], cfg["comb_id"]
            w, b = least_squares_stitch(feats[a0][front], feats[a1][end - 1])
            self.stitch_layers[a0][sid].init_stitch_weights_bias(w, b)
        self.train(was_training)

    @contextlib.contextmanager
    def merged_stitching_layers(self) -> Iterator["SNNetv2"]:
        """Inference in the authors' deploy form: every stitching layer runs one linear with the LoRA
        update merged into a cached weight (the parameters are not touched). Eval / no-grad only."""
        if self.training:
            raise RuntimeError("merged_stitching_layers() is for inference: call .eval() first")
        lora = [m for m in self.modules() if isinstance(m, LoRALinear)]
        for m in lora:
            m.cache_merged(True)
        try:
            yield self
        finally:
            for m in lora:
                m.cache_merged(False)

    # ---- timm interface
    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        return {f"anchors.{i}.{n}" for i in range(2) for n in ("pos_embed", "cls_token")}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(stem=r"^anchors\.(\d+)\.(cls_token|pos_embed|patch_embed)",
                    blocks=[(r"^anchors\.(\d+)\.blocks\.(\d+)", None), (r"^stitch_layers", (99998,)),
                            (r"^anchors\.(\d+)\.norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for a in self.anchors:
            a.set_grad_checkpointing(enable)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The head of the anchor that ends the current configuration."""
        return self.end_anchor().head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """New heads for both anchors (every configuration ends in one of them)."""
        if global_pool not in (None, "token"):
            raise ValueError("SN-Netv2 anchors classify the class token (global_pool='token')")
        self.num_classes = num_classes
        for a in self.anchors:
            a.reset_classifier(num_classes)

    def _active_config(self) -> int:
        if self.training and self.sample_in_train:
            return self.sample_config()
        return self.stitch_config_id

    def forward_features(self, x: torch.Tensor, config_id: int | None = None) -> torch.Tensor:
        """Tokens (class token first) after the final norm of the configuration's last anchor."""
        cid = self.stitch_config_id if config_id is None else config_id
        comb, route, stitch_ids = self._plan(cid)
        x = self.anchors[comb[0]].embed(x)
        for a, (begin, end), sid in zip(comb, route, stitch_ids):
            x = self.anchors[a].run_blocks(x, begin, end)
            x = self.stitch_layers[a][sid](x)
        return self.anchors[comb[-1]].norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False, config_id: int | None = None) -> torch.Tensor:
        return self.end_anchor(config_id).forward_head(x, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cid = self._active_config()
        self.last_config_id = cid
        return self.forward_head(self.forward_features(x, cid), config_id=cid)

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
            config_id: int | None = None,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Block outputs along the current configuration's route (indices count the blocks it runs;
        a stitched output is taken before its stitching layer, so widths follow the anchors)."""
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError("output_fmt must be 'NCHW' or 'NLC'")
        cid = self.stitch_config_id if config_id is None else config_id
        comb, route, stitch_ids = self._plan(cid)
        steps = [(a, i) for a, (b, e) in zip(comb, route) for i in range(b, min(e, self.depths[a] - 1) + 1)]
        take, max_index = feature_take_indices(len(steps), indices)
        B, _, H, W = x.shape
        gh, gw = self.anchors[comb[0]].patch_embed.dynamic_feat_size((H, W))
        x = self.anchors[comb[0]].embed(x)
        out, k = [], 0
        for a, (b, e), sid in zip(comb, route, stitch_ids):
            for i in range(b, min(e, self.depths[a] - 1) + 1):
                if stop_early and k > max_index:
                    break
                x = self.anchors[a].run_blocks(x, i, i)
                if k in take:
                    t = self.anchors[a].norm(x) if norm else x
                    t = t[:, self.num_prefix_tokens:]
                    out.append(t.reshape(B, gh, gw, -1).permute(0, 3, 1, 2).contiguous() if output_fmt == "NCHW" else t)
                k += 1
            x = self.stitch_layers[a][sid](x)
        if intermediates_only:
            return out
        return self.anchors[comb[-1]].norm(x), out


# --------------------------------------------------------------------------- FLOPs
def _flops_of(fn, *args: Any) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as mode:
        fn(*args)
    return int(mode.get_total_flops())


def _meta_twin(model: SNNetv2 | str) -> SNNetv2:
    import timm

    from archzoo.verify import _SkipMetaInit

    with torch.device("meta"), _SkipMetaInit():
        twin = timm.create_model(model) if isinstance(model, str) else SNNetv2(**model.build_args)
    return twin.eval()


def stitch_config_flops(
        model: SNNetv2 | str,
        img_size: int | None = None,
        config_ids: Sequence[int] | None = None,
        merged: bool = True,
        whole_forward: bool = False,
) -> dict[int, int]:
    """FLOPs (2 x multiply-adds, counted like ``archzoo.verify.count_flops``: matmuls, convs and
    attention) of a batch-1 forward of every stitch configuration, on a meta-device twin of ``model``
    (a registered model name, or a model whose weights are never touched).

    ``merged``: stitching layers in the deploy form the authors count (one linear each); otherwise
    their low-rank branch is counted too. By default the parts a configuration runs (embedding, one
    block of each anchor, each stitching layer, norm and head) are counted once and summed per route;
    ``whole_forward`` counts a full forward per configuration instead (same numbers, much slower).
    """
    from archzoo.verify import count_flops

    twin = _meta_twin(model)
    size = to_2tuple(img_size or twin.img_size)
    ids = list(twin.stitch_configs) if config_ids is None else [int(i) for i in config_ids]
    out: dict[int, int] = {}
    with twin.merged_stitching_layers() if merged else contextlib.nullcontext():
        if whole_forward:
            for cid in ids:
                twin.set_stitch(cid)
                out[cid] = count_flops(twin, size, twin.in_chans)
            return out
        x = torch.empty(1, twin.in_chans, *size, device="meta")
        tokens = [a.embed(x) for a in twin.anchors]
        embed = [_flops_of(a.embed, x) for a in twin.anchors]
        block = [_flops_of(a.blocks[0], t) for a, t in zip(twin.anchors, tokens)]
        head = [_flops_of(lambda t, a=a: a.forward_head(a.norm(t)), t) for a, t in zip(twin.anchors, tokens)]
        stitch = [[_flops_of(layer, tokens[a]) if not isinstance(layer, nn.Identity) else 0
                   for layer in twin.stitch_layers[a]] for a in range(2)]
        for cid in ids:
            comb, route, stitch_ids = twin._plan(cid)
            total = embed[comb[0]] + head[comb[-1]]
            for a, (b, e), sid in zip(comb, route, stitch_ids):
                total += block[a] * max(0, min(e, twin.depths[a] - 1) - b + 1) + stitch[a][sid]
            out[cid] = total
    return out


# --------------------------------------------------------------------------- checkpoints
def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """The authors' SNNetv2 keys -> archzoo's: unwrap ``model``/``module.``, layer scale
    ``gamma_1``/``gamma_2`` -> ``ls1.gamma``/``ls2.gamma``. Stitching layers keep their keys."""
    if "model" in state_dict and isinstance(state_dict["model"], dict):
        state_dict = state_dict["model"]
    out = {}
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k[len("module."):]
        if ".blocks." in k and (k.endswith(".gamma_1") or k.endswith(".gamma_2")):
            k = k[: -len("gamma_1")] + f"ls{k[-1]}.gamma"
        out[k] = v
    return out


def _reference_forward(model: SNNetv2, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Logits of every stitch configuration for the same input (the file's ``__output__.<cfg_id>``)."""
    outs = {}
    for cid in model.stitch_configs:
        model.set_stitch(cid)
        outs[f"__output__.{cid}"] = model(inputs[""])
    return outs


@register_reference("snnetv2", forward=_reference_forward)
def _reference_snnetv2(config: dict, meta: dict) -> nn.Module:
    # the authors' SNNetv2([vit_models(...) per anchor], lora_r); include_* flags when given
    include = [k for k in ("sl", "ls", "lsl", "sls") if config.get(f"include_{k}", True)]
    return SNNetv2(
        anchors=[dict(embed_dim=a["embed_dim"], depth=a["depth"], num_heads=a["num_heads"],
                      mlp_ratio=a.get("mlp_ratio", 4.0)) for a in config["anchors"]],
        img_size=config.get("img_size", 224), patch_size=config.get("patch_size", 16),
        in_chans=config.get("in_chans", 3), num_classes=config.get("num_classes", 1000),
        lora_r=config.get("lora_r", 0), include=include,
    )


def reference_stitch_configs(meta: dict) -> dict[int, dict[str, Any]]:
    """The ``stitch_configs`` metadata of a reference file (the authors' enumeration), keyed by id."""
    return {int(k): v for k, v in json.loads(meta["stitch_configs"]).items()}


# --------------------------------------------------------------------------- registry
def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> SNNetv2:
    if kwargs.get("features_only"):
        raise ValueError("SN-Netv2 has no fixed feature pyramid (it depends on the stitch configuration); "
                         "use forward_intermediates() for the selected configuration")
    return build_model_with_cfg(SNNetv2, variant, pretrained, pretrained_filter_fn=checkpoint_filter_fn, **kwargs)


def _cfg(file: str = "", **kwargs: Any) -> dict[str, Any]:
    return {
        "url": "", "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": None, "crop_pct": 1.0,
        "interpolation": "bicubic", "fixed_input_size": True, "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD, "first_conv": "anchors.0.patch_embed.proj", "classifier": "anchors.1.head",
        "paper_ids": "arXiv:2307.00154",
        "origin_url": f"https://github.com/ziplab/SN-Netv2/releases/download/1.0/{file}" if file
        else "https://github.com/ziplab/SN-Netv2",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "snnetv2_deit3_s_b.in1k": _cfg("snnetv2_deit3_s_b.pth"),
    "snnetv2_deit3_s_l.in1k": _cfg("snnetv2_deit3_s_l.pth"),
    "snnetv2_deit3_b_l.in1k": _cfg("snnetv2_deit3_b_l.pth"),
})


def _pair(small: str, large: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"anchors": (DEIT3_ANCHORS[small], DEIT3_ANCHORS[large]), "lora_r": 64, **kwargs}


@register_model
def snnetv2_deit3_s_b(pretrained: bool = False, **kwargs: Any) -> SNNetv2:
    """SN-Netv2 of DeiT3-S and DeiT3-B (LoRA r 64; 135 configurations; 117.1 M params)."""
    return _create("snnetv2_deit3_s_b", pretrained, **_pair("s", "b", kwargs))


@register_model
def snnetv2_deit3_s_l(pretrained: bool = False, **kwargs: Any) -> SNNetv2:
    """SN-Netv2 of DeiT3-S and DeiT3-L (LoRA r 64; 135 configurations; 337.6 M params)."""
    return _create("snnetv2_deit3_s_l", pretrained, **_pair("s", "l", kwargs))


@register_model
def snnetv2_deit3_b_l(pretrained: bool = False, **kwargs: Any) -> SNNetv2:
    """SN-Netv2 of DeiT3-B and DeiT3-L (LoRA r 64; 135 configurations; 411.7 M params)."""
    return _create("snnetv2_deit3_b_l", pretrained, **_pair("b", "l", kwargs))
