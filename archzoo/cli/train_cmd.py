"""``archzoo train``: train a model of the collection (default: the embedded digits, on the CPU).

    archzoo train                                    # default model on digits, ~2 min on 2 CPU cores
    archzoo train --model hornet_tiny_7x7 --data imagefolder:/data/pets --img-size 224 --epochs 30
    archzoo train --resume runs/mobilenetv2_050-digits-20250101-120000
    torchrun --nproc_per_node=4 -m archzoo train --data cifar10 --download   # DistributedDataParallel
"""
from __future__ import annotations

import argparse

# option name -> TrainConfig field, for the flags that map one to one
_FIELDS = {
    "model": "model", "data": "data", "img_size": "img_size", "in_chans": "in_chans", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "lr", "opt": "opt", "weight_decay": "weight_decay", "momentum": "momentum",
    "sched": "sched", "warmup_epochs": "warmup_epochs", "warmup_lr": "warmup_lr", "min_lr": "min_lr",
    "smoothing": "label_smoothing", "clip_grad": "clip_grad", "ema": "ema", "ema_decay": "ema_decay", "amp": "amp",
    "channels_last": "channels_last", "aug": "augment", "drop_path": "drop_path", "seed": "seed",
    "threads": "threads", "workers": "workers", "ckpt_steps": "ckpt_steps", "max_steps": "max_steps", "eval_batch_size": "eval_batch_size",
    "download": "download", "device": "device", "deterministic": "deterministic",
    "init_checkpoint": "init_checkpoint", "quiet": "quiet", "zero_head": "zero_head",
    "convbn": "convbn", "freeze_bn": "freeze_bn", "train_sizes": "train_sizes",
    "consistency_weight": "consistency_weight",
}


def register(sub: argparse._SubParsersAction) -> None:
    from archzoo.engine.config import DEFAULT_MODEL, TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train",
        help="train a model (default: the embedded digits data set, on the CPU)",
        description="Train a model of the collection. Every run writes a folder with config.json, metrics.csv, "
        "curves.png and last/ and best/ checkpoints; --resume continues a run exactly. Under "
        "`torchrun --nproc_per_node=N -m archzoo train ...` it runs DistributedDataParallel.",
    )
    g = p.add_argument_group("model and data")
    g.add_argument("--model", help=f"model name, see `archzoo list` (default: {DEFAULT_MODEL})")
    g.add_argument("--data", help="digits (default), imagefolder:PATH, cifar10[:ROOT], cifar100[:ROOT], synthetic[:k=v,...]")
    g.add_argument("--img-size", type=int, help=f"input side in pixels (default: {d.img_size})")
    g.add_argument("--in-chans", type=int, help=f"input channels (default: {d.in_chans}; digits also take 1)")
    g.add_argument("--download", action="store_true", default=None, help="allow downloading cifar10/cifar100")
    g.add_argument("--aug", action=argparse.BooleanOptionalAction, default=None, help="training augmentation (default: on)")
    g.add_argument("--drop-path", type=float, help="stochastic depth rate, for models that take drop_path_rate")
    g.add_argument("--zero-head", action=argparse.BooleanOptionalAction, default=None,
                   help="start the classifier at zero (default: on; timm's head inits are scaled for 1,000 classes)")
    g.add_argument("--init-checkpoint", metavar="PATH",
                   help="start from these weights (archzoo's, timm's or the authors'); a classifier of another size is re-initialised")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help=f"default: {d.epochs}")
    g.add_argument("--batch-size", type=int, help=f"per process (default: {d.batch_size})")
    g.add_argument("--opt", help=f"timm optimizer name (default: {d.opt}; e.g. sgd, adam, lamb)")
    g.add_argument("--lr", type=float, help=f"peak learning rate (default: {d.lr:g})")
    g.add_argument("--weight-decay", type=float, help=f"default: {d.weight_decay:g} (not on biases and norms)")
    g.add_argument("--momentum", type=float, help=f"for SGD-like optimizers (default: {d.momentum:g})")
    g.add_argument("--sched", help=f"timm schedule: cosine, step, multistep, poly, tanh or none (default: {d.sched})")
    g.add_argument("--warmup-epochs", type=int, help=f"linear warm-up (default: {d.warmup_epochs})")
    g.add_argument("--warmup-lr", type=float, help=f"default: {d.warmup_lr:g}")
    g.add_argument("--min-lr", type=float, help=f"default: {d.min_lr:g}")
    g.add_argument("--smoothing", type=float, help=f"label smoothing (default: {d.label_smoothing:g})")
    g.add_argument("--clip-grad", type=float, help="clip the gradient norm to this value (default: off)")
    g.add_argument("--ema", action=argparse.BooleanOptionalAction, default=None,
                   help="keep an EMA of the weights; it is what gets validated and saved as best (default: off)")
    g.add_argument("--ema-decay", type=float, help=f"default: {d.ema_decay:g} (with warm-up)")
    g.add_argument("--seed", type=int, help=f"default: {d.seed}")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    g.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"),
                   help="mixed precision (default: auto = bf16 on GPUs that have it, fp16 on older ones, off on the CPU)")
    g.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last memory format (default: on)")
    g.add_argument("--threads", type=int, help="CPU threads (default: torch's; recorded so --resume matches)")
    g.add_argument("--workers", type=int, help=f"data-loader processes (default: {d.workers})")
    g.add_argument("--deterministic", action="store_true", default=None, help="deterministic cuDNN/cuBLAS kernels")
    g.add_argument("--eval-batch-size", type=int, help=f"default: {d.eval_batch_size}")
    g = p.add_argument_group("run folder")
    g.add_argument("--output", help="parent folder of runs (default: runs)")
    g.add_argument("--name", help="run folder name (default: MODEL-DATA-DATE-TIME)")
    g.add_argument("--ckpt-steps", type=int, help="also save last/ every N steps inside an epoch (default: epoch ends only)")
    g.add_argument("--max-steps", type=int,
                   help="stop after N optimizer steps in all, validating and checkpointing where it stops (the "
                        "schedule still spans --epochs; --resume with a larger value or 0 goes on); default: 0, no limit")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue this run where it stopped, with its saved options")
    g.add_argument("--convbn", choices=("eval", "tune"),
                   help="ConvBN blocks (P25): 'tune' fine-tunes with frozen BN statistics and less activation memory")
    g.add_argument("--freeze-bn", action="store_true", default=None, help="keep every BatchNorm at its running statistics")
    g.add_argument("--train-sizes", type=int, nargs="+", metavar="N",
                   help="ResFormer-style multi-resolution training at these input sizes (P37), with the scale-consistency loss")
    g.add_argument("--consistency-weight", type=float, help="weight of the scale-consistency loss (default: 1.0)")
    g.add_argument("--quiet", action="store_true", default=None, help="no progress bars or tables: plain lines for logs/CI")
    p.set_defaults(func=run)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _one_line(e: BaseException) -> str:
    s = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    s = str(s).strip()
    return s.splitlines()[0] if s else type(e).__name__


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archzoo.cli.main import CLIError
    from archzoo.engine.config import RESUME_OVERRIDABLE, TrainConfig
    from archzoo.engine.loop import train

    given = {field: getattr(args, opt) for opt, field in _FIELDS.items() if getattr(args, opt) is not None}
    if given.get("train_sizes") and "img_size" not in given:
        given["img_size"] = max(given["train_sizes"])  # batches arrive at the largest size, then are resized
    try:
        if args.resume:
            if args.name is not None or args.output is not None:
                raise CLIError("--resume continues a run in its own folder; drop --name/--output")
            bad = [opt for opt, field in _FIELDS.items() if field in given and field not in RESUME_OVERRIDABLE]
            if bad:
                raise CLIError(f"--resume continues {args.resume} with its saved options; drop {', '.join(map(_flag, bad))}")
            run_dir = Path(args.resume).expanduser()
            if not run_dir.is_dir():
                raise CLIError(f"run folder {run_dir} does not exist")
            cfg = TrainConfig.from_run(run_dir)
            for k, v in given.items():
                setattr(cfg, k, v)
            train(cfg, resume_dir=run_dir)
        else:
            cfg = TrainConfig(**given)
            train(cfg, output=args.output or "runs", name=args.name)
    except CLIError:
        raise
    except (ValueError, KeyError, OSError, FloatingPointError) as e:
        # every user error is one line (exit code 2 from archzoo.cli.main)
        raise CLIError(_one_line(e)) from None
    return 0
