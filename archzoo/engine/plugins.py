"""Tasks and methods: the two kinds of plug-in of archzoo's training engine.

A :class:`Task` says what is learned and how it is measured: its data, its model (head included), the
loss of a training step with the values it logs, its evaluation (torchmetrics metrics, reduced over
DDP ranks), the primary metric that picks the best checkpoint and whether higher is better, and the
figures and predictions it saves. A :class:`Method` changes how it is learned, for any task it
supports: the model before training (ConvBN modes), or the training step (multi-resolution training,
distillation, masking pretext tasks), by wrapping the step of the task or of the next method.

Both register by name and bring their options as a dataclass, whose fields become ``archzoo train``
flags (argparse ``dest`` = field name; ``metadata`` gives the help text, the flag's spelling and its
choices) and the task's or method's entry in ``config.json``. The loop (:mod:`archzoo.engine.loop`)
knows nothing task-specific::

    @register_task("denoising")
    class Denoising(Task):
        @dataclass
        class Options:
            noise: float = field(default=0.3, metadata={"help": "noise standard deviation"})
        primary = "psnr"
        ...

Plug-ins outside archzoo are loaded by module name or file path, from ``--plugin`` (recorded in the
run's config so ``--resume`` and ``archzoo eval`` load them again), ``$ARCHZOO_PLUGINS`` (separated by
``os.pathsep``) or the ``archzoo.plugins`` entry-point group of installed packages.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import torch
from torch import nn

from archzoo.errors import ConfigError

__all__ = [
    "Task",
    "Method",
    "StepOutput",
    "EvalOutput",
    "NoOptions",
    "register_task",
    "register_method",
    "get_task",
    "get_method",
    "list_tasks",
    "list_methods",
    "load_plugins",
    "option_fields",
    "build_options",
    "move_batch",
]


@dataclass
class NoOptions:
    """A task or method without options."""


@dataclass
class StepOutput:
    """One training step: ``loss`` is backpropagated; ``logs`` are this batch's mean values (floats
    or 0-d tensors) of the task's ``train_logs`` (and the methods'), weighted by ``n`` samples."""

    loss: torch.Tensor
    logs: dict[str, Any]
    n: int


@dataclass
class EvalOutput:
    """An evaluation: scalar ``metrics`` (the ``val_*``/``test_*`` columns, JSON) and ``details``
    for reports (per-class numbers, a confusion matrix: JSON-serialisable)."""

    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    n: int = 0


def move_batch(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Tensors of a (nested tuple/list/dict) batch moved to ``device``; 4-D float tensors channels_last."""
    if isinstance(batch, torch.Tensor):
        t = batch.to(device, non_blocking=True)
        if channels_last and t.dim() == 4 and t.is_floating_point():
            t = t.contiguous(memory_format=torch.channels_last)
        return t
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_batch(b, device, channels_last) for b in batch)
    if isinstance(batch, dict):
        return {k: move_batch(v, device, channels_last) for k, v in batch.items()}
    return batch


class Task:
    """Base class of tasks (see the module docstring). Subclasses set the class attributes and
    implement ``build_data``, ``build_model``, ``training_step``, ``eval_metrics`` and
    ``eval_step``; ``summarize`` and ``save_results`` have defaults."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    primary: ClassVar[str] = ""          # key of the evaluation's metrics that picks the best checkpoint
    mode: ClassVar[str] = "max"          # "max": higher is better; "min": lower is better
    primary_label: ClassVar[str] = ""    # axis label of the primary metric in curves.png
    train_logs: ClassVar[tuple[str, ...]] = ("loss",)  # the train_* columns of metrics.csv
    eval_keys: ClassVar[tuple[str, ...]] = ()          # the val_* columns (keys of EvalOutput.metrics)
    default_model: ClassVar[str | None] = None          # the model of a run without --model
    default_img_size: ClassVar[int] = 32               # the input size of a run without --img-size

    def __init__(self, options: Any, cfg: Any) -> None:
        self.options = options
        self.cfg = cfg

    # -- data and model ----------------------------------------------------------------------------
    def build_data(self, splits: Sequence[str] = ("train", "val", "test")) -> Any:
        """The run's :class:`archzoo.data.DataBundle` (the training split must support
        ``set_seed``/``set_epoch`` for exact resumption, like :class:`archzoo.data.EpochSeededDataset`)."""
        raise NotImplementedError

    def model_kwargs(self, data: Any) -> dict[str, Any]:
        """The ``create_model`` kwargs of the run's model, checked against the data; saved with every
        checkpoint and passed back to :meth:`build_model` to rebuild it."""
        raise NotImplementedError

    def build_model(self, kwargs: dict[str, Any]) -> nn.Module:
        raise NotImplementedError

    def init_weights(self, model: nn.Module, init_checkpoint: str | None) -> list[str]:
        """Initialise a new run's model (``--init-checkpoint``: every tensor must fit); returns log lines."""
        if not init_checkpoint:
            return []
        from archzoo.checkpoint import load_checkpoint

        load_checkpoint(model, init_checkpoint)
        return [f"initialised from {init_checkpoint}"]

    def example_batch(self, data: Any, device: torch.device) -> Any:
        """A small batch of the training split (methods that trace the model use it)."""
        ds = data.split("train")
        items = [ds[i] for i in range(min(2, len(ds)))]
        return move_batch(torch.utils.data.default_collate(items), device)

    # -- training ----------------------------------------------------------------------------------
    def training_step(self, model: nn.Module, batch: Any) -> StepOutput:
        raise NotImplementedError

    # -- evaluation --------------------------------------------------------------------------------
    def eval_metrics(self, data: Any) -> Mapping[str, Any]:
        """Fresh torchmetrics metrics (name -> Metric) for one evaluation."""
        raise NotImplementedError

    def eval_step(self, model: nn.Module, batch: Any, metrics: Mapping[str, Any]) -> int:
        """Forward one batch and update ``metrics``; returns the number of samples."""
        raise NotImplementedError

    def summarize(self, computed: dict[str, torch.Tensor], data: Any, n: int) -> EvalOutput:
        """Turn computed metric values into an :class:`EvalOutput` (default: every 0-d value a scalar)."""
        scalars = {k: float(v) for k, v in computed.items() if torch.as_tensor(v).numel() == 1}
        return EvalOutput(scalars, {}, n)

    def save_results(self, out: EvalOutput, data: Any, directory: Path, tag: str, title: str = "") -> list[Path]:
        """Figures and predictions of an evaluation, written into ``directory`` (default: none)."""
        return []

    def better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best

    def describe_result(self, out: EvalOutput) -> str:
        """One line for logs: every eval key."""
        return "  ".join(f"{k} {out.metrics[k]:.4g}" for k in self.eval_keys if k in out.metrics)


class Method:
    """Base class of methods. ``setup`` may change the model before the optimizer is built;
    ``training_step`` wraps the step below it (``inner``: the next method's, finally the task's)."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions
    tasks: ClassVar[tuple[str, ...] | None] = None     # the tasks it supports (None: any)
    train_logs: ClassVar[tuple[str, ...]] = ()         # extra train_* columns it logs

    def __init__(self, options: Any, cfg: Any) -> None:
        self.options = options
        self.cfg = cfg

    def configure(self, cfg: Any) -> None:
        """Fill run options the user left unset (None) that this method decides, e.g. the input size."""

    def setup(self, model: nn.Module, task: Task, example_batch: Any) -> str | None:
        """Change ``model`` in place before training; returns a line for the log (or None)."""
        return None

    def training_step(self, task: Task, model: nn.Module, batch: Any,
                      inner: Callable[[nn.Module, Any], StepOutput]) -> StepOutput:
        return inner(model, batch)


_TASKS: dict[str, type[Task]] = {}
_METHODS: dict[str, type[Method]] = {}


def _register(kind: str, table: dict, name: str, base: type) -> Callable[[type], type]:
    if not name or not isinstance(name, str):
        raise TypeError(f"a {kind} needs a name")

    def deco(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"@register_{kind}({name!r}) decorates a {base.__name__} subclass, not {cls!r}")
        if not dataclasses.is_dataclass(cls.Options):
            raise TypeError(f"{cls.__name__}.Options must be a dataclass")
        old = table.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"{kind} {name!r} is already registered by {old.__module__}.{old.__qualname__}")
        cls.name = name
        table[name] = cls
        return cls

    return deco


def register_task(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`Task` subclass under ``name``."""
    return _register("task", _TASKS, name, Task)


def register_method(name: str) -> Callable[[type], type]:
    """Class decorator: register a :class:`Method` subclass under ``name``."""
    return _register("method", _METHODS, name, Method)


def _builtin() -> None:
    import archzoo.methods  # noqa: F401  (registers the built-in methods)
    import archzoo.tasks  # noqa: F401  (registers the built-in tasks)

    load_plugins(())


def list_tasks() -> dict[str, type[Task]]:
    _builtin()
    return dict(sorted(_TASKS.items()))


def list_methods() -> dict[str, type[Method]]:
    _builtin()
    return dict(sorted(_METHODS.items()))


def get_task(name: str) -> type[Task]:
    tasks = list_tasks()
    if name not in tasks:
        raise ConfigError(f"unknown task {name!r}; registered: {', '.join(tasks) or 'none'}")
    return tasks[name]


def get_method(name: str) -> type[Method]:
    methods = list_methods()
    if name not in methods:
        raise ConfigError(f"unknown method {name!r}; registered: {', '.join(methods) or 'none'}")
    return methods[name]


# -- plug-in loading -------------------------------------------------------------------------------
_LOADED: set[str] = set()


def _load_one(spec: str) -> None:
    if spec in _LOADED:
        return
    path = Path(spec).expanduser()
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"plug-in file {path} does not exist")
        name = f"archzoo_plugin_{abs(hash(str(path.resolve()))):x}"
        if name not in sys.modules:
            s = importlib.util.spec_from_file_location(name, path)
            if s is None or s.loader is None:
                raise ConfigError(f"cannot load plug-in file {path}")
            mod = importlib.util.module_from_spec(s)
            sys.modules[name] = mod
            try:
                s.loader.exec_module(mod)
            except BaseException:
                del sys.modules[name]
                raise
    else:
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as e:
            if e.name and spec.startswith(e.name):
                raise ConfigError(f"plug-in module {spec!r} not found") from None
            raise
    _LOADED.add(spec)


def _entry_points() -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group="archzoo.plugins"))


def load_plugins(specs: Iterable[str]) -> list[str]:
    """Import plug-ins (module names or ``.py`` paths), plus ``$ARCHZOO_PLUGINS`` and the
    ``archzoo.plugins`` entry points; returns the specs given (for the run's config)."""
    given = [s for s in specs if s]
    env = [s for s in os.environ.get("ARCHZOO_PLUGINS", "").split(os.pathsep) if s]
    for spec in (*env, *given):
        _load_one(spec)
    if "entry-points" not in _LOADED:
        _LOADED.add("entry-points")
        for ep in _entry_points():
            ep.load()
    return given


# -- options ---------------------------------------------------------------------------------------
def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


@dataclass(frozen=True)
class OptionField:
    """One option of a task, a method or the run: its dataclass field and how to parse it."""

    dest: str             # the field name = argparse dest = key in config.json
    flag: str             # e.g. "--label-smoothing"
    type: Any             # int, float, str, bool or list[int]/list[float]/list[str]
    optional: bool
    default: Any
    help: str
    choices: tuple[Any, ...] | None
    owner: str            # "run", "task NAME" or "method NAME"
    repeat: bool = False  # a list given by repeating the flag (--method a --method b), not as one list
    metavar: str | None = None


def option_fields(options_cls: type, owner: str) -> list[OptionField]:
    hints = typing.get_type_hints(options_cls)
    out = []
    for f in dataclasses.fields(options_cls):
        if f.metadata.get("cli") is False:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        out.append(OptionField(
            dest=f.name, flag=f.metadata.get("flag", "--" + f.name.replace("_", "-")), type=tp, optional=optional,
            default=default, help=f.metadata.get("help", ""), choices=tuple(f.metadata["choices"]) if "choices" in f.metadata else None,
            owner=owner, repeat=bool(f.metadata.get("repeat", False)), metavar=f.metadata.get("metavar"),
        ))
    return out


def _check_value(of: OptionField, value: Any) -> Any:
    """``value`` converted to the option's type, or a ConfigError naming the option."""
    if value is None:
        if of.optional:
            return None
        raise ConfigError(f"{of.flag} ({of.owner}) needs a value")
    tp = of.type
    origin = typing.get_origin(tp)
    try:
        if origin in (list, tuple):
            (inner,) = typing.get_args(tp)[:1]
            if not isinstance(value, (list, tuple)):
                raise TypeError
            value = [_scalar(inner, v) for v in value]
        else:
            value = _scalar(tp, value)
    except (TypeError, ValueError):
        raise ConfigError(f"{of.flag} ({of.owner}) must be {_type_name(tp)}, got {value!r}") from None
    if of.choices is not None and value not in of.choices:
        raise ConfigError(f"{of.flag} ({of.owner}) must be one of {', '.join(map(str, of.choices))}, got {value!r}")
    return value


def _scalar(tp: Any, v: Any) -> Any:
    if tp is bool:
        if not isinstance(v, bool):
            raise TypeError
        return v
    if tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError
        return v
    if tp is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError
        return float(v)
    if tp is str:
        if not isinstance(v, str):
            raise TypeError
        return v
    if tp is dict or typing.get_origin(tp) is dict:
        if not isinstance(v, dict):
            raise TypeError
        return dict(v)
    return v


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(tp)[0])}s"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def build_options(options_cls: type, values: Mapping[str, Any] | None, owner: str) -> Any:
    """An instance of ``options_cls`` from ``values`` (unknown keys and wrong types rejected with a
    :class:`ConfigError` naming the option), validated by its ``validate()`` if it has one."""
    values = dict(values or {})
    fields = {of.dest: of for of in option_fields(options_cls, owner)}
    all_names = {f.name for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(values) - all_names)
    if unknown:
        raise ConfigError(f"{owner} has no option(s) {', '.join(unknown)}; it has: {', '.join(sorted(all_names)) or 'none'}")
    checked = {k: (_check_value(fields[k], v) if k in fields else v) for k, v in values.items()}
    try:
        obj = options_cls(**checked)
    except TypeError as e:
        raise ConfigError(f"{owner}: {e}") from None
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj

