"""ConvBN Tune vs Eval mode (P25, arXiv 2305.11624): activation memory held by autograd, step time.

Memory: bytes of the tensors autograd saves for backward during one forward (saved-tensor hooks;
tensors sharing storage are counted once; parameters excluded since both modes hold them), split into
activations (tensors with the batch as leading dimension) and the rest (Tune's fused weights W', b').
Time: one training step (forward + backward) per mode, the modes interleaved (E T E T ...), median.

    python benchmarks/convbn_tune_vs_eval.py --models mobilenetv2_100 resnetrs50 --img-size 128 --batch 16
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from rich.console import Console
from rich.table import Table

import archzoo
from archzoo.claims.convbn import saved_tensor_bytes as saved_bytes  # (activation, other) bytes autograd saves
from archzoo.methods.convbn import set_mode


def step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    t0 = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mobilenetv2_100", "resnetrs50"])
    ap.add_argument("--img-size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.manual_seed(0)
    table = Table(title=f"ConvBN Tune vs Eval, batch {args.batch}, {args.img_size}px, {torch.get_num_threads()} threads")
    for col in ("model", "pairs", "eval act. MB", "tune act. MB", "activations saved", "tune other MB",
                "eval step ms", "tune step ms", "tune/eval time"):
        table.add_column(col)
    for name in args.models:
        x = torch.randn(args.batch, 3, args.img_size, args.img_size)
        y = torch.randint(0, 10, (args.batch,))
        ev = archzoo.create_model(name, num_classes=10)
        tu = copy.deepcopy(ev)
        n = set_mode(ev, "eval", x[:2])
        set_mode(tu, "tune", x[:2])
        ev.train(), tu.train()
        mem_e, mem_t = saved_bytes(ev, x), saved_bytes(tu, x)
        step(ev, x, y), step(tu, x, y)  # warm-up
        te, tt = [], []
        for _ in range(args.repeats):
            te.append(step(ev, x, y))
            tt.append(step(tu, x, y))
        me, mt = statistics.median(te), statistics.median(tt)
        mb = lambda b: f"{b / 2**20:.1f}"  # noqa: E731
        table.add_row(name, str(n), mb(mem_e[0]), mb(mem_t[0]), f"{1 - mem_t[0] / mem_e[0]:.1%}", mb(mem_t[1]),
                      f"{me * 1e3:.0f}", f"{mt * 1e3:.0f}", f"{mt / me:.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
