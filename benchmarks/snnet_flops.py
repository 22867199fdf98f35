"""SN-Netv2 (P34, arXiv 2307.00154): FLOPs of every stitch configuration, as a PNG plot.

Every configuration of each anchor pair is counted on the meta device (no weights, no compute) with
``archzoo.models.snnet.stitch_config_flops`` (2 x multiply-adds of matmuls, convolutions and attention;
stitching layers in their deploy form, one linear each). The plot shows GFLOPs per configuration id,
coloured by the kind of route (anchor, small->large, large->small, large->small->large,
small->large->small): the x axis of the paper's accuracy/FLOPs curves. The authors' own figures
are in fvcore "FLOPs" (multiply-adds, LayerNorms counted too): divide by 2 to compare.

    python benchmarks/snnet_flops.py --models snnetv2_deit3_s_b snnetv2_deit3_s_l --out snnet_flops.png
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import archzoo  # noqa: E402,F401  (registers the models)
from archzoo.models.snnet import _meta_twin, stitch_config_flops  # noqa: E402

KIND_LABELS = {"anchor": "anchor", "sl": "small->large", "ls": "large->small",
               "lsl": "large->small->large", "sls": "small->large->small"}


def config_kinds(model_name: str) -> dict[int, str]:
    """Kind of every configuration id (the authors' training-excluded stitch is 'sl' too)."""
    twin = _meta_twin(model_name)
    kinds = {}
    for cid, cfg in twin.stitch_configs.items():
        comb = tuple(cfg["comb_id"])
        kinds[cid] = {(0,): "anchor", (1,): "anchor", (0, 1): "sl", (1, 0): "ls", (1, 0, 1): "lsl", (0, 1, 0): "sls"}[comb]
    return kinds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["snnetv2_deit3_s_b", "snnetv2_deit3_s_l", "snnetv2_deit3_b_l"])
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--out", default="snnet_flops.png", help="PNG path")
    ap.add_argument("--json", default=None, help="also write {model: {config id: FLOPs}} here")
    args = ap.parse_args()

    fig, axes = plt.subplots(len(args.models), 1, figsize=(10, 3.2 * len(args.models)), squeeze=False)
    table = {}
    for ax, name in zip(axes[:, 0], args.models):
        flops = stitch_config_flops(name, img_size=args.img_size)
        kinds = config_kinds(name)
        table[name] = flops
        for kind, label in KIND_LABELS.items():
            ids = [cid for cid in flops if kinds[cid] == kind]
            ax.scatter(ids, [flops[i] / 1e9 for i in ids], s=12, label=label)
        ax.set_title(f"{name}: {len(flops)} stitch configurations at {args.img_size}x{args.img_size}")
        ax.set_xlabel("configuration id")
        ax.set_ylabel("GFLOPs (2 x MACs)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        lo, hi = min(flops.values()), max(flops.values())
        print(f"{name}: {len(flops)} configurations, {lo / 1e9:.2f} .. {hi / 1e9:.2f} GFLOPs")
    fig.tight_layout()
    out = Path(args.out)
    fig.savefig(out, dpi=120)
    print(f"saved {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
