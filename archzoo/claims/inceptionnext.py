"""InceptionNeXt (P56): Inception depthwise convolution makes ConvNeXt faster to train.

Paper: Yu et al., "InceptionNeXt: When Inception Meets ConvNeXt", CVPR 2024, arXiv 2303.16900.
Models measured: timm's ``inception_next_tiny`` and ``convnext_tiny`` (the card's providers).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from archzoo.claims._common import check_budget, new_figure, paired_ratio_median, save_figure, say

__all__ = ["throughput_vs_convnext"]

# The paper's ImageNet-1K comparison and the authors' README table (A100, full precision, 224 px): train
# throughput 901 vs 575 img/s (x1.57, the abstract's "1.6x"), inference 2900 vs 2413 img/s (x1.20).
PAPER_TRAIN_RATIO = 901 / 575
PAPER_INFER_RATIO = 2900 / 2413

_SETUP = {
    "full": dict(models=("inception_next_tiny", "convnext_tiny"), img_size=224, batch=16, repeats=7, model_kwargs={}),
    # smoke: the same code path on the atto variants at 64 px
    "smoke": dict(models=("inception_next_atto", "convnext_atto"), img_size=64, batch=2, repeats=1, model_kwargs={}),
}


def throughput_vs_convnext(budget: str = "full", out_dir: str | Path | None = None, *,
                           verbose: bool = False) -> dict[str, float]:
    """Training and inference throughput of InceptionNeXt-T over ConvNeXt-T on this CPU.

    Claim (arXiv 2303.16900, abstract and the ImageNet-1K comparison table, repeated in the authors'
    README; measured on an A100 in full precision at 224 px): InceptionNeXt-T trains with 1.6x the
    throughput of ConvNeXt-T (901 vs 575 img/s) and
    infers with 1.2x (2900 vs 2413 img/s) at similar FLOPs (4.2 vs 4.5 GMACs), because its Inception
    depthwise conv (3x3 square, 1x11 and 11x1 bands on 1/8 of the channels each, identity on the rest)
    has far fewer memory accesses than the 7x7 depthwise conv on every channel.

    Scaled down: A100 -> this CPU (eager PyTorch, float32, the threads torch is set to); ImageNet batch
    128 -> batch 16 of random 224 px images and random labels. A training step is forward,
    cross-entropy, backward and an AdamW update (timm's optimizer factory); inference is a forward in
    ``torch.inference_mode``. The two models are timed interleaved (7 rounds after a warm-up round;
    the ratio is the median of the per-round ratios). The paper's reason (memory access of depthwise
    convs on a GPU) need not hold on a CPU, where FLOPs weigh more: the values are what this machine
    measures.

    Returns ``train_ratio`` and ``infer_ratio`` (InceptionNeXt-T / ConvNeXt-T images/s, > 1: InceptionNeXt
    faster), each model's images/s and parameters, and the paper's ratios for reference.
    ``budget="smoke"``: the atto variants at 64 px, batch 2, one round.
    """
    check_budget(budget)
    from timm.optim import create_optimizer_v2

    from archzoo.registry import create_model

    c = _SETUP[budget]
    torch.manual_seed(0)
    x = torch.randn(c["batch"], 3, c["img_size"], c["img_size"])
    y = torch.randint(0, 1000, (c["batch"],))
    models, opts = [], []
    for name in c["models"]:
        torch.manual_seed(0)
        m = create_model(name, **c["model_kwargs"])
        models.append(m)
        opts.append(create_optimizer_v2(m, opt="adamw", lr=1e-4, weight_decay=0.05))

    def train_step(i: int):
        m, opt = models[i], opts[i]

        def run() -> None:
            m.train()
            loss = nn.functional.cross_entropy(m(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return run

    def infer(i: int):
        m = models[i]

        def run() -> None:
            m.eval()
            with torch.inference_mode():
                m(x)
        return run

    say(verbose, f"timing training steps of {c['models'][0]} vs {c['models'][1]} ({c['repeats']} interleaved rounds)")
    tr_inc, tr_cnx, train_ratio = paired_ratio_median(train_step(0), train_step(1), c["repeats"])
    say(verbose, "timing inference")
    in_inc, in_cnx, infer_ratio = paired_ratio_median(infer(0), infer(1), c["repeats"])
    b = c["batch"]
    out = {
        # paired_ratio_median returns t_a / t_b per round; throughput ratio a/b = t_b / t_a
        "train_ratio": 1.0 / train_ratio,
        "infer_ratio": 1.0 / infer_ratio,
        "inceptionnext_train_img_per_s": b / tr_inc,
        "convnext_train_img_per_s": b / tr_cnx,
        "inceptionnext_infer_img_per_s": b / in_inc,
        "convnext_infer_img_per_s": b / in_cnx,
        "inceptionnext_params": float(sum(p.numel() for p in models[0].parameters())),
        "convnext_params": float(sum(p.numel() for p in models[1].parameters())),
        "paper_train_ratio": PAPER_TRAIN_RATIO,
        "paper_infer_ratio": PAPER_INFER_RATIO,
        "batch": float(b),
        "img_size": float(c["img_size"]),
        "threads": float(torch.get_num_threads()),
    }
    if out_dir is not None:
        fig, ax = new_figure(figsize=(6.4, 4.0))
        labels = ["training", "inference"]
        ours = [out["train_ratio"], out["infer_ratio"]]
        paper = [PAPER_TRAIN_RATIO, PAPER_INFER_RATIO]
        pos = range(len(labels))
        ax.bar([p - 0.2 for p in pos], paper, width=0.4, color="0.7", label="paper (A100, batch 128)")
        ax.bar([p + 0.2 for p in pos], ours, width=0.4, color="tab:blue",
               label=f"this CPU ({out['threads']:.0f} threads, batch {b})")
        for p, v in zip(pos, ours):
            ax.text(p + 0.2, v, f"x{v:.2f}", ha="center", va="bottom")
        for p, v in zip(pos, paper):
            ax.text(p - 0.2, v, f"x{v:.2f}", ha="center", va="bottom")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(list(pos))
        ax.set_xticklabels(labels)
        ax.set_ylabel(f"{c['models'][0]} / {c['models'][1]} throughput")
        ax.set_title(f"InceptionNeXt vs ConvNeXt at {c['img_size']} px")
        ax.legend(loc="lower right")
        save_figure(fig, out_dir, "inceptionnext_throughput.png")
    return out
