"""``archzoo export MODEL|CHECKPOINT --format onnx|torchscript|exported-program --out F``."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from archzoo.export import FORMATS

    p = sub.add_parser("export", help="export a model to ONNX / TorchScript / torch.export (checked after writing)")
    p.add_argument("model", metavar="MODEL|CHECKPOINT",
                   help="a model name, or a training run's checkpoint (its run directory's config names the model)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--model-name", help="model name for a checkpoint file that does not say it")
    p.add_argument("--num-classes", type=int, help="classifier size (default: the model's or the checkpoint's)")
    p.add_argument("--in-chans", type=int, default=None)
    p.add_argument("--img-size", type=int, default=None, help="example input size (default: the model's)")
    p.add_argument("--deploy", action="store_true", help="export the deploy form (fused BN, re-parameterised)")
    p.set_defaults(func=run)


_WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


def _load(args: argparse.Namespace):
    """The model to export and its input channels: a model name, or a checkpoint (a run folder, a
    checkpoint folder, or a weights file; archzoo's ``meta.json`` beside it names the model)."""
    from pathlib import Path

    from archzoo.checkpoint import load_checkpoint
    from archzoo.engine.checkpoints import resolve_checkpoint
    from archzoo.errors import CheckpointError
    from archzoo.registry import create_model
    from archzoo.validation import get_input_rules

    path = Path(args.model).expanduser()
    given = {k: v for k, v in (("num_classes", args.num_classes), ("in_chans", args.in_chans)) if v is not None}
    if not (path.exists() or path.suffix in _WEIGHT_SUFFIXES):
        model = create_model(args.model, **given)
        return model, args.in_chans or get_input_rules(model).channels or 3
    ckpt = resolve_checkpoint(path)  # CheckpointError naming the path when it is missing or not a checkpoint
    meta = ckpt.meta or {}
    name = args.model_name or meta.get("model")
    if not name:
        raise CheckpointError(f"{path}: cannot tell which model it is for (no archzoo meta.json beside it); "
                              "pass --model-name")
    kwargs = dict(meta.get("model_kwargs") or {}) if meta.get("model") == name else {}
    kwargs.update(given)
    model = create_model(name, **kwargs)
    load_checkpoint(model, ckpt.weights)
    return model, kwargs.get("in_chans") or get_input_rules(model).channels or 3


def run(args: argparse.Namespace) -> int:
    import torch

    from archzoo.errors import ConfigError
    from archzoo.export import export_model
    from archzoo.validation import check_input, get_input_rules

    model, in_chans = _load(args)
    if args.img_size is not None:
        if args.img_size < 1:
            raise ConfigError(f"--img-size must be a positive integer, got {args.img_size}")
        size = args.img_size
    else:
        fixed = get_input_rules(model).fixed_size
        size = fixed[0] if fixed else (getattr(model, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))[-1]
    check_input(model, torch.empty(1, in_chans, size, size, device="meta"))  # before any slow work
    if args.deploy:
        from archzoo.deploy import deploy

        model = deploy(model)
        print(f"deploy form: {model.deploy_report}")
    res = export_model(model, args.format, args.out, img_size=size, in_chans=in_chans)
    print(f"wrote {res.path} ({res.format}); max abs difference vs PyTorch: {res.max_abs_diff:.3e} "
          f"(batch sizes {', '.join(map(str, res.batch_sizes_checked))})")
    if res.note:
        print(f"note: {res.note}")
    return 0
