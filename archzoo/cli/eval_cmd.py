"""``archzoo eval --checkpoint PATH``: top-1/top-5, per-class accuracy and a confusion-matrix PNG.

PATH may be a run folder (its best checkpoint), a checkpoint folder (``RUN/best``, ``RUN/last``), the
``model.safetensors`` inside one, or a timm/authors' checkpoint file (then ``--model`` and ``--data``
are needed; the authors' key names go through the model family's ``checkpoint_filter_fn``).
"""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint: top-1/top-5, per-class accuracy, confusion matrix")
    p.add_argument("--checkpoint", required=True, metavar="PATH",
                   help="a run folder, RUN/best, RUN/last, a model.safetensors, or a timm/authors' checkpoint")
    p.add_argument("--model", help="model name (default: the run's; required for checkpoints outside a run)")
    p.add_argument("--data", help="data spec (default: the run's; see `archzoo train --help`)")
    p.add_argument("--split", choices=("test", "val", "train"), default="test", help="default: test")
    p.add_argument("--img-size", type=int, help="default: the run's, else the model's pretrained input size")
    p.add_argument("--in-chans", type=int, help="default: the run's, else 3")
    p.add_argument("--batch-size", type=int, help="default: the run's eval batch size, else 256")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"), help="default: the run's, else auto")
    p.add_argument("--threads", type=int, help="CPU threads")
    p.add_argument("--workers", type=int, default=0, help="data-loader processes (default: 0)")
    p.add_argument("--download", action="store_true", help="allow downloading cifar10/cifar100")
    p.add_argument("--output", metavar="DIR", help="where the JSON and PNG go (default: RUN/eval, else runs/eval-MODEL)")
    p.add_argument("--quiet", action="store_true", help="one result line, no tables or progress bar")
    p.set_defaults(func=run)


def _one_line(e: BaseException) -> str:
    s = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    s = str(s).strip()
    return s.splitlines()[0] if s else type(e).__name__


def run(args: argparse.Namespace) -> int:
    from archzoo.cli.main import CLIError

    try:
        return _run(args)
    except CLIError:
        raise
    except (ValueError, KeyError, OSError) as e:
        raise CLIError(_one_line(e)) from None


def _positive(name: str, v: int | None) -> None:
    from archzoo.cli.main import CLIError

    if v is not None and v < 1:
        raise CLIError(f"{name} must be a positive integer, got {v}")


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import timm
    import torch

    from archzoo.checkpoint import CheckpointError, load_checkpoint, load_state_dict_strict, read_state_dict
    from archzoo.cli.main import CLIError
    from archzoo.data import DataOptions, build_data
    from archzoo.engine import checkpoints as ck
    from archzoo.engine.ddp import cleanup_distributed, init_distributed
    from archzoo.engine.evaluate import eval_loader, evaluate
    from archzoo.engine.loop import resolve_amp
    from archzoo.engine.modeling import build_model, resolve_model_kwargs
    from archzoo.engine.progress import RunConsole
    from archzoo.engine.rundir import check_writable
    from archzoo.registry import check_model_name

    for name in ("--img-size", "--in-chans", "--batch-size", "--threads"):
        _positive(name, getattr(args, name[2:].replace("-", "_")))
    if args.workers < 0:
        raise CLIError(f"--workers must be >= 0, got {args.workers}")
    if args.threads:
        torch.set_num_threads(args.threads)

    ref = ck.resolve_checkpoint(args.checkpoint)
    run_cfg = ref.config or {}
    train_cfg = run_cfg.get("train", {})
    run_info = run_cfg.get("run", {})
    ckpt_model = (ref.meta or {}).get("model") or train_cfg.get("model")
    model_name = args.model or ckpt_model
    if not model_name:
        raise CLIError(f"{ref.weights} is not inside an archzoo run: pass --model NAME (and --data SPEC)")
    check_model_name(model_name)
    if ckpt_model and model_name != ckpt_model:
        raise CheckpointError(f"checkpoint {ref.weights} is a checkpoint of {ckpt_model}, not {model_name}")
    data_spec = args.data or run_info.get("data") or train_cfg.get("data")
    if not data_spec:
        raise CLIError(f"{ref.weights} is not inside an archzoo run: pass --data SPEC (e.g. imagefolder:PATH)")
    img_size = args.img_size or train_cfg.get("img_size")
    if img_size is None:
        cfg = timm.models.get_pretrained_cfg(model_name)
        img_size = int(cfg.input_size[-1]) if cfg is not None and getattr(cfg, "input_size", None) else 224
    in_chans = args.in_chans or train_cfg.get("in_chans") or 3
    batch_size = args.batch_size or train_cfg.get("eval_batch_size") or 256
    channels_last = bool(train_cfg.get("channels_last", False))

    dist_info = init_distributed(args.device)
    try:
        amp_dtype = resolve_amp(args.amp or train_cfg.get("amp") or "auto", dist_info.device)
        data = build_data(data_spec, DataOptions(img_size, in_chans, args.download, augment=False, splits=(args.split,)))
        saved_kwargs = dict((ref.meta or {}).get("model_kwargs") or run_info.get("model_kwargs") or {})
        if saved_kwargs:  # a run's checkpoint (its model was checked above)
            if saved_kwargs.get("num_classes") != data.num_classes:
                raise CheckpointError(
                    f"checkpoint {ref.weights} has {saved_kwargs.get('num_classes')} classes but {data.spec} has {data.num_classes}"
                )
            if saved_kwargs.get("in_chans", 3) != in_chans:
                raise CheckpointError(f"checkpoint {ref.weights} takes {saved_kwargs.get('in_chans')} channel(s), not {in_chans}")
            extra = {k: v for k, v in saved_kwargs.items() if k not in ("num_classes", "in_chans")}
        else:
            extra = {}
        kwargs = resolve_model_kwargs(model_name, data.num_classes, in_chans, img_size, extra)
        model = build_model(model_name, kwargs)
        if ref.meta is not None:  # archzoo's own checkpoint: exact keys
            load_state_dict_strict(model, read_state_dict(ref.weights), what=f"checkpoint {ref.weights}")
        else:  # timm's or the authors': through the family's converter
            try:
                load_checkpoint(model, ref.weights)
            except CheckpointError as e:
                raise CheckpointError(f"{_one_line(e)} (is it a checkpoint of another model than {model_name}?)") from None
        model.to(dist_info.device)
        if channels_last:
            model.to(memory_format=torch.channels_last)

        if args.output:
            out_dir = Path(args.output).expanduser()
        elif ref.run_dir is not None:
            out_dir = ref.run_dir / "eval"
        else:
            out_dir = Path("runs") / f"eval-{model_name}"
        check_writable(out_dir)

        console = RunConsole(enabled=dist_info.is_main, quiet=args.quiet)
        ds = data.split(args.split)
        loader = eval_loader(ds, batch_size, dist_info, args.workers)
        console.start(f"eval {args.split}", total=len(loader), training=False)
        res = evaluate(model, loader, data.num_classes, dist_info, amp_dtype=amp_dtype, channels_last=channels_last,
                       on_batch=lambda n: console.advance(1))
        console.stop()
    finally:
        cleanup_distributed()

    split_name = data.test_split if args.split == "test" else args.split
    tag = ref.weights.parent.name if ref.meta is not None else ref.weights.stem
    if dist_info.is_main:
        from archzoo.engine.plots import plot_confusion

        payload = {
            "checkpoint": str(ref.weights),
            "model": model_name,
            "data": data.spec,
            "split": split_name,
            **res.as_dict(data.class_names),
        }
        json_path = ck.write_json(out_dir / f"{tag}-{args.split}.json", payload)
        png_path = plot_confusion(res.confusion.numpy(), data.class_names, out_dir / f"{tag}-{args.split}-confusion.png",
                                  title=f"{model_name} on {data.spec} {split_name}: top-1 {res.top1:.2f}%")
        correct = int(res.confusion.diagonal().sum())
        console.line(
            f"{model_name} on {data.spec} {split_name} ({res.n} images): top-1 {res.top1:.2f}% ({correct}/{res.n})  "
            f"top-{res.k} {res.topk:.2f}%  loss {res.loss:.4f}"
        )
        if not args.quiet:
            from rich.table import Table

            t = Table(title="per-class accuracy")
            for col in ("class", "images", "top-1 %"):
                t.add_column(col, justify="right" if col != "class" else "left")
            counts = res.confusion.sum(dim=1).tolist()
            for name, acc, n in zip(data.class_names, res.per_class, counts):
                t.add_row(str(name), str(int(n)), "-" if acc != acc else f"{acc:.2f}")
            console.out.print(t)
        console.line(f"wrote {json_path} and {png_path}")
    return 0
