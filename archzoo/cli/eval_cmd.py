"""``archzoo eval --checkpoint PATH``: the task's metrics of a checkpoint, with its figures
(classification: top-1/top-5, per-class accuracy and a confusion-matrix PNG). A thin layer over
:func:`archzoo.engine.evaluate_checkpoint`.

PATH may be a run folder (its best checkpoint), a checkpoint folder (``RUN/best``, ``RUN/last``), the
``model.safetensors`` inside one, or a timm/authors' checkpoint file (then ``--model`` and ``--data``
are needed; the authors' key names go through the model family's ``checkpoint_filter_fn``).
"""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint with its task's metrics (classification: top-1/top-5, "
                                    "per-class accuracy, confusion matrix)")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a run folder, RUN/best, RUN/last, a model.safetensors, or a timm/authors' checkpoint")
    p.add_argument("--model", help="model name (default: the run's; required for checkpoints outside a run)")
    p.add_argument("--data", help="data spec (default: the run's; see `archzoo train --help`)")
    p.add_argument("--task", help="task (default: the run's, else classification)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
    p.add_argument("--img-size", type=int, help="default: the run's, else the model's pretrained input size")
    p.add_argument("--in-chans", type=int, help="default: the run's, else 3")
    p.add_argument("--batch-size", type=int, help="default: the run's eval batch size, else 256")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), help="default: the run's, else auto")
    p.add_argument("--threads", type=int, help="CPU threads")
    p.add_argument("--workers", type=int, default=0, help="data-loader processes (default: 0)")
    p.add_argument("--download", action="store_true", help="allow downloading cifar10/cifar100")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE_OR_FILE",
                   help="import this module or .py file first (a run's own plug-ins are loaded from its config)")
    p.add_argument("--output", metavar="DIR", help="where the JSON and PNG go (default: RUN/eval, else runs/eval-MODEL)")
    p.add_argument("--quiet", action="store_true", help="one result line, no tables or progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from archzoo.engine.evaluate import evaluate_checkpoint
    from archzoo.engine.progress import RunConsole
    from archzoo.errors import CLIError

    if args.threads is not None:
        if args.threads < 1:
            raise CLIError(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    ev = evaluate_checkpoint(
        args.checkpoint, model=args.model, data=args.data, task=args.task, split=args.split, img_size=args.img_size,
        in_chans=args.in_chans, batch_size=args.batch_size, device=args.device, amp=args.amp, workers=args.workers,
        download=args.download, output=args.output, plugins=args.plugin, quiet=args.quiet,
    )
    if not ev.files:  # not rank 0
        return 0
    res = ev.result
    console = RunConsole(quiet=args.quiet)
    console.line(f"{ev.model} on {ev.data} {ev.split} ({res.n} samples): {ev.description}")
    per_class = res.details.get("per_class")
    if per_class and not args.quiet:
        from rich.table import Table

        t = Table(title="per-class accuracy")
        for col in ("class", "samples", "top-1 %"):
            t.add_column(col, justify="right" if col != "class" else "left")
        counts = [sum(r) for r in res.details["confusion"]]
        for (name, acc), n in zip(per_class.items(), counts):
            t.add_row(str(name), str(int(n)), "-" if acc is None else f"{acc:.2f}")
        console.out.print(t)
    console.line(f"wrote {', '.join(map(str, ev.files))}")
    return 0
