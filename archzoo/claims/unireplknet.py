"""UniRepLKNet (P16): the Dilated Reparam Block re-parameterises into one large-kernel conv, exactly.

Paper: Ding et al., "UniRepLKNet: A Universal Perception Large-Kernel ConvNet for Audio, Video, Point
Cloud, Time-Series and Image Recognition", CVPR 2024, arXiv 2311.15599.
Implementation measured: ``UniRepLKNet.reparameterize()`` (archzoo/models/unireplknet.py).
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from archzoo.claims._common import check_budget, new_figure, paired_ratio_median, save_figure, say

__all__ = ["reparam_speedup"]

_SETUP = {"full": dict(model="unireplknet_a", img_size=224, batch=8, repeats=15),
          "smoke": dict(model="unireplknet_a", img_size=64, batch=2, repeats=2)}


def perturb_like_trained(model: nn.Module, seed: int = 0) -> nn.Module:
    """Perturb every parameter and BatchNorm statistic (as the reference files do), so that the
    zero-initialised GRN, the biases, the layer scale and the BatchNorms all change the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g, dtype=m.running_mean.dtype))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g, dtype=m.running_var.dtype))
    return model


def reparam_speedup(budget: str = "full", out_dir: str | Path | None = None, *,
                    verbose: bool = False) -> dict[str, float]:
    """Inference throughput of UniRepLKNet's deploy form over its training form, and their output gap.

    Claim (arXiv 2311.15599, the Dilated Reparam Block section and its figure): the parallel dilated
    small-kernel branches and BatchNorms used in training are merged, after training, into one
    non-dilated large-kernel depthwise conv (BatchNorms, GRN bias and layer scale folded into the
    neighbouring layers), giving an equivalent model that runs as a plain large-kernel ConvNet, so the
    branches cost nothing at inference. The paper's throughput numbers are of the deploy form; here both
    forms are timed.

    Scaled down: UniRepLKNet-A (the smallest, 4.4 M deploy parameters, weights and BatchNorm statistics
    perturbed so every folded part matters), batch 8 at 224 px, float32, eval mode, eager PyTorch on
    this CPU, the two forms timed interleaved (15 rounds, median of the per-round ratios). The deploy
    form is the architecture's own re-parameterisation only (not archzoo.deploy's extra Conv-BN fusion
    and Linear routing), as in the paper.

    Returns ``speedup`` (deploy throughput / training-form throughput), ``max_abs_diff`` and
    ``max_rel_diff`` (logits, deploy vs training form, float32; relative to the largest logit),
    ``max_rel_diff_fp64`` (the same in float64 on two of the images: rounding only), both forms'
    parameter counts and images/s. ``budget="smoke"``: 64 px, batch 2, 2 rounds.
    """
    check_budget(budget)
    from archzoo.registry import create_model

    c = _SETUP[budget]
    torch.manual_seed(0)
    train_form = perturb_like_trained(create_model(c["model"])).eval()
    deploy_form = copy.deepcopy(train_form).reparameterize().eval()
    x = torch.randn(c["batch"], 3, c["img_size"], c["img_size"])
    with torch.inference_mode():
        a, b = train_form(x), deploy_form(x)
    diff = (b - a).abs().max().item()
    with torch.inference_mode():  # the same comparison in float64: what is left is rounding only
        t64, x64 = copy.deepcopy(train_form).double(), x[:2].double()
        d64 = copy.deepcopy(t64).reparameterize().eval()  # fused in float64 too
        a64 = t64(x64)
        rel64 = ((d64(x64) - a64).abs().max() / a64.abs().max()).item()
        del t64, d64
    say(verbose, f"{c['model']}: max |deploy - train| = {diff:.3g}; timing {c['repeats']} interleaved rounds")

    def infer(m: nn.Module):
        def run() -> None:
            with torch.inference_mode():
                m(x)
        return run

    t_train, t_deploy, ratio = paired_ratio_median(infer(train_form), infer(deploy_form), c["repeats"])
    out = {
        "speedup": ratio,  # median over rounds of t_train / t_deploy = deploy throughput / train-form throughput
        "max_abs_diff": diff,
        "max_rel_diff": diff / a.abs().max().item(),
        "max_rel_diff_fp64": rel64,
        "train_form_params": float(sum(p.numel() for p in train_form.parameters())),
        "deploy_form_params": float(sum(p.numel() for p in deploy_form.parameters())),
        "train_form_img_per_s": c["batch"] / t_train,
        "deploy_form_img_per_s": c["batch"] / t_deploy,
        "batch": float(c["batch"]),
        "img_size": float(c["img_size"]),
        "threads": float(torch.get_num_threads()),
    }
    if out_dir is not None:
        fig, ax = new_figure(figsize=(6.0, 4.0))
        vals = [out["train_form_img_per_s"], out["deploy_form_img_per_s"]]
        ax.bar(["training form\n(dilated branches + BN)", "deploy form\n(one large-kernel conv)"], vals,
               color=["tab:gray", "tab:green"])
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.1f} img/s", ha="center", va="bottom")
        ax.set_ylabel(f"images/s (batch {c['batch']}, {c['img_size']} px, {out['threads']:.0f} threads)")
        ax.set_title(f"{c['model']}: x{ratio:.2f} after re-parameterisation\n"
                     f"max rel. output diff {out['max_rel_diff']:.1e} (float32), {rel64:.1e} (float64)")
        save_figure(fig, out_dir, "unireplknet_reparam.png")
    return out
