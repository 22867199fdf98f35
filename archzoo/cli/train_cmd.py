"""``archzoo train``: train a model of the collection for a task, with any training methods.

    archzoo train                                    # default model on digits, ~2 min on 2 CPU cores
    archzoo train --model hornet_tiny_7x7 --data imagefolder:/data/pets --img-size 224 --epochs 30
    archzoo train --method multires --train-sizes 16 24 32 --model resformer_tiny_patch16 ...
    archzoo train --resume runs/mobilenetv2_050-digits-20250101-120000
    torchrun --nproc_per_node=4 -m archzoo train --data cifar10 --download   # DistributedDataParallel

The flags come from the dataclass fields of :class:`archzoo.engine.TrainConfig` and of every
registered task's and method's options (argparse ``dest`` = field name): nothing here names a task
or a method.
"""
from __future__ import annotations

import argparse
import typing
from typing import Any

from archzoo.engine.plugins import OptionField


def _add_option(group: argparse._ArgumentGroup, of: OptionField, seen: dict[str, OptionField]) -> None:
    """Add one option's flag; options of several tasks/methods may share a flag of the same type."""
    if of.dest in seen:
        prev = seen[of.dest]
        if (prev.flag, prev.type) != (of.flag, of.type):
            raise TypeError(f"{of.owner}'s option {of.dest} clashes with {prev.owner}'s ({prev.flag}, {prev.type})")
        return
    seen[of.dest] = of
    help_text = of.help or ""
    if of.default not in (None, [], {}, "") and of.type is not bool:
        help_text += f" (default: {of.default})" if help_text else f"default: {of.default}"
    kw: dict[str, Any] = {"dest": of.dest, "default": None, "help": help_text or None}
    origin = typing.get_origin(of.type)
    if of.metavar:
        kw["metavar"] = of.metavar
    if of.repeat:
        kw.update(action="append")
    elif of.type is bool:
        kw.update(action=argparse.BooleanOptionalAction)
        kw["help"] = f"{help_text} (default: {'on' if of.default else 'off'})"
    elif origin in (list, tuple):
        kw.update(type=typing.get_args(of.type)[0], nargs="+")
    else:
        kw.update(type=of.type if of.type in (int, float, str) else str)
    if of.choices is not None and of.type is not bool:
        kw["choices"] = of.choices
    group.add_argument(of.flag, **kw)


def _run_fields() -> list[OptionField]:
    from archzoo.engine.config import TrainConfig
    from archzoo.engine.plugins import option_fields

    return option_fields(TrainConfig, "run")


def register(sub: argparse._SubParsersAction) -> None:
    from dataclasses import fields

    from archzoo.engine.config import TrainConfig
    from archzoo.engine.plugins import list_methods, list_tasks, option_fields

    tasks, methods = list_tasks(), list_methods()
    p = sub.add_parser(
        "train",
        help="train a model for a task (default: classification on the embedded digits, on the CPU)",
        description="Train a model of the collection. Every run writes a folder with config.json, metrics.csv, "
        "curves.png, the task's evaluation of the test split (eval/) and last/ and best/ checkpoints; --resume "
        "continues a run exactly. Under `torchrun --nproc_per_node=N -m archzoo train ...` it runs "
        f"DistributedDataParallel. Tasks: {', '.join(tasks)}. Methods: {', '.join(methods) or 'none'}.",
    )
    groups = {f.metadata.get("group") for f in fields(TrainConfig)}
    by_group = {g: p.add_argument_group(g) for g in groups if g}
    seen: dict[str, OptionField] = {}
    meta = {f.name: f.metadata for f in fields(TrainConfig)}
    for of in _run_fields():
        _add_option(by_group[meta[of.dest].get("group", "optimisation")], of, seen)
    g = by_group["run folder"]
    g.add_argument("--output", help="parent folder of runs (default: runs)")
    g.add_argument("--name", help="run folder name (default: MODEL-DATA-DATE-TIME)")
    g.add_argument("--resume", metavar="RUN_DIR", help="continue this run where it stopped, with its saved options")
    g.add_argument("--list", action="store_true", help="list the registered tasks and methods, then exit")
    for kind, table in (("task", tasks), ("method", methods)):
        for name, cls in table.items():
            opts = option_fields(cls.Options, f"{kind} {name}")
            if opts:
                grp = p.add_argument_group(f"{kind} {name}", (cls.__doc__ or "").strip().splitlines()[0] or None)
                for of in opts:
                    _add_option(grp, of, seen)
    p.set_defaults(func=run, _option_fields=seen)


def _plugin_owners() -> dict[str, list[tuple[str, str]]]:
    """dest -> [(kind, name)] of the registered tasks and methods that have that option."""
    from archzoo.engine.plugins import list_methods, list_tasks, option_fields

    owners: dict[str, list[tuple[str, str]]] = {}
    for kind, table in (("task", list_tasks()), ("method", list_methods())):
        for name, cls in table.items():
            for of in option_fields(cls.Options, f"{kind} {name}"):
                owners.setdefault(of.dest, []).append((kind, name))
    return owners


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from archzoo.engine.config import RESUME_OVERRIDABLE, TrainConfig
    from archzoo.engine.loop import train
    from archzoo.errors import CLIError

    if args.list:
        return _list()
    run_dests = {of.dest for of in _run_fields()}
    seen: dict[str, OptionField] = args._option_fields
    given = {d: getattr(args, d) for d in seen if getattr(args, d) is not None}
    run_given = {k: v for k, v in given.items() if k in run_dests}
    plugin_given = {k: v for k, v in given.items() if k not in run_dests}

    if args.resume:
        if args.name is not None or args.output is not None:
            raise CLIError("--resume continues a run in its own folder; drop --name/--output")
        bad = [seen[k].flag for k in given if k not in RESUME_OVERRIDABLE]
        if bad:
            raise CLIError(f"--resume continues {args.resume} with its saved options; drop {', '.join(bad)}")
        run_dir = Path(args.resume).expanduser()
        if not run_dir.is_dir():
            raise CLIError(f"run folder {run_dir} does not exist")
        cfg = TrainConfig.from_run(run_dir)
        for k, v in run_given.items():
            setattr(cfg, k, v)
        train(cfg, resume_dir=run_dir)
        return 0

    cfg = TrainConfig(**run_given)
    # each task/method option goes to the run's task or to the methods of the run that have it
    owners = _plugin_owners()
    for dest, value in plugin_given.items():
        mine = [(k, n) for k, n in owners.get(dest, []) if (k == "task" and n == cfg.task) or (k == "method" and n in cfg.methods)]
        if not mine:
            where = ", ".join(f"{k} {n}" for k, n in owners.get(dest, []))
            hint = "add --method NAME" if any(k == "method" for k, _ in owners.get(dest, [])) else "choose that --task"
            raise CLIError(f"{seen[dest].flag} is an option of {where}, which this run does not use ({hint})")
        for kind, name in mine:
            if kind == "task":
                cfg.task_options[dest] = value
            else:
                cfg.method_options.setdefault(name, {})[dest] = value
    train(cfg, output=args.output or "runs", name=args.name)
    return 0


def _list() -> int:
    from archzoo.engine.plugins import list_methods, list_tasks, option_fields

    for kind, table in (("tasks", list_tasks()), ("methods", list_methods())):
        print(f"{kind}:")
        for name, cls in table.items():
            flags = " ".join(of.flag for of in option_fields(cls.Options, name))
            doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
            print(f"  {name:<16} {doc}" + (f"  [{flags}]" if flags else ""))
    return 0
