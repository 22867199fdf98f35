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


def _load(args: argparse.Namespace):
    import json
    from pathlib import Path

    from archzoo.checkpoint import load_checkpoint, read_state_dict
    from archzoo.cli.main import CLIError
    from archzoo.registry import create_model

    path = Path(args.model)
    if not (path.suffix in (".safetensors", ".pth", ".pt", ".bin") or path.exists()):
        kw = {k: v for k, v in (("num_classes", args.num_classes), ("in_chans", args.in_chans)) if v is not None}
        return create_model(args.model, **kw), args.in_chans or 3
    if not path.is_file():
        raise CLIError(f"checkpoint not found: {path}")
    name, cfg = args.model_name, {}
    for candidate in (path.parent / "config.json", path.parent.parent / "config.json"):
        if candidate.is_file():
            cfg = json.loads(candidate.read_text())
            name = name or cfg.get("model")
            break
    if not name:
        raise CLIError(f"{path}: cannot tell which model it is for; pass --model-name")
    sd = read_state_dict(path)
    num_classes = args.num_classes or cfg.get("num_classes")
    in_chans = args.in_chans or cfg.get("in_chans") or 3
    kw = {"in_chans": in_chans} | ({"num_classes": num_classes} if num_classes else {})
    model = create_model(name, **kw)
    load_checkpoint(model, path) if sd else None
    return model, in_chans


def run(args: argparse.Namespace) -> int:
    from archzoo.export import export_model

    model, in_chans = _load(args)
    if args.deploy:
        from archzoo.deploy import deploy

        model = deploy(model)
        print(f"deploy form: {model.deploy_report}")
    size = args.img_size or (getattr(model, "pretrained_cfg", None) or {}).get("input_size", (3, 224, 224))[-1]
    res = export_model(model, args.format, args.out, img_size=size, in_chans=in_chans)
    print(f"wrote {res.path} ({res.format}); max abs difference vs PyTorch: {res.max_abs_diff:.3e} "
          f"(batch sizes {', '.join(map(str, res.batch_sizes_checked))})")
    if res.note:
        print(f"note: {res.note}")
    return 0
