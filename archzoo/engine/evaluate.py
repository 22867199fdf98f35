"""Evaluation: a task's metrics over a loader (reduced over DDP ranks), and of a saved checkpoint.

The test result a training run reports and :func:`evaluate_checkpoint` (``archzoo eval``) both come
from :func:`evaluate`, with the same loader settings, so the two agree exactly.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from archzoo.engine.ddp import DistInfo, ShardSampler, all_reduce_sum
from archzoo.engine.plugins import EvalOutput, Task, move_batch

__all__ = ["evaluate", "eval_loader", "autocast_context", "evaluate_checkpoint", "CheckpointEvaluation"]


def autocast_context(device: torch.device, amp_dtype: torch.dtype | None) -> Any:
    if amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def eval_loader(ds: Dataset, batch_size: int, dist_info: DistInfo, workers: int = 0) -> DataLoader:
    sampler = ShardSampler(len(ds), dist_info.rank, dist_info.world_size)  # type: ignore[arg-type]
    return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      pin_memory=dist_info.device.type == "cuda", drop_last=False,
                      generator=torch.Generator().manual_seed(0))  # leaves the global RNG alone


@torch.no_grad()
def evaluate(
    task: Task,
    model: nn.Module,
    loader: DataLoader,
    data: Any,
    dist_info: DistInfo,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> EvalOutput:
    """The task's metrics of ``model`` on this rank's shard of ``loader``; torchmetrics reduces the
    metric states over the ranks when ``compute()`` runs under an initialised process group."""
    device = dist_info.device
    metrics = task.eval_metrics(data)
    for m in metrics.values():
        m.to(device)
    was_training = model.training
    model.eval()
    n = 0
    try:
        for batch in loader:
            batch = move_batch(batch, device, channels_last)
            with autocast_context(device, amp_dtype):
                k = task.eval_step(model, batch, metrics)
            n += k
            if on_batch is not None:
                on_batch(k)
    finally:
        model.train(was_training)
    computed = {name: m.compute() for name, m in metrics.items()}
    total = all_reduce_sum(torch.tensor([float(n)], dtype=torch.float64, device=device))
    return task.summarize(computed, data, int(total.item()))


@dataclass
class CheckpointEvaluation:
    """What :func:`evaluate_checkpoint` measured and wrote."""

    result: EvalOutput
    task: str
    model: str
    data: str
    split: str
    checkpoint: Path
    description: str = ""  # the task's one-line account of the result
    files: list[Path] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"checkpoint": str(self.checkpoint), "task": self.task, "model": self.model, "data": self.data,
                "split": self.split, "n": self.result.n, **self.result.metrics, **self.result.details}


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    model: str | None = None,
    data: str | None = None,
    task: str | None = None,
    split: str = "test",
    img_size: int | None = None,
    in_chans: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    amp: str | None = None,
    workers: int = 0,
    download: bool = False,
    output: str | Path | None = None,
    plugins: list[str] | None = None,
    quiet: bool = True,
) -> CheckpointEvaluation:
    """Evaluate a checkpoint on a split of its run's data (or of ``data``) and write
    ``SPLIT``-named JSON and the task's figures into ``output`` (default: ``RUN/eval``).

    ``checkpoint`` may be a run folder (its best checkpoint), ``RUN/best``, ``RUN/last``, a
    ``model.safetensors`` inside one, or a timm/authors' checkpoint file (then ``model`` and ``data``
    are needed; the authors' key names go through the family's ``checkpoint_filter_fn``).
    """
    from archzoo.checkpoint import load_checkpoint, load_state_dict_strict, read_state_dict
    from archzoo.engine import checkpoints as ck
    from archzoo.engine.config import TrainConfig
    from archzoo.engine.ddp import cleanup_distributed, init_distributed
    from archzoo.engine.loop import resolve_amp
    from archzoo.engine.plugins import build_options, get_task, load_plugins
    from archzoo.engine.progress import RunConsole
    from archzoo.engine.rundir import check_writable
    from archzoo.errors import CheckpointError, CheckpointMismatchError, ConfigError
    from archzoo.io import write_json

    for name, v in (("img_size", img_size), ("in_chans", in_chans), ("batch_size", batch_size)):
        if v is not None and (not isinstance(v, int) or v < 1):
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {v}")
    if workers < 0:
        raise ConfigError(f"--workers must be >= 0, got {workers}")
    ref = ck.resolve_checkpoint(checkpoint)
    saved = (ref.config or {}).get("train", {})
    run_info = (ref.config or {}).get("run", {})
    cfg = TrainConfig.from_dict(saved) if saved else TrainConfig()
    load_plugins([*cfg.plugins, *(plugins or [])])
    meta = ref.meta or {}
    ckpt_model = meta.get("model") or saved.get("model")
    if model and ckpt_model and model != ckpt_model:
        raise CheckpointError(f"checkpoint {ref.weights} is a checkpoint of {ckpt_model}, not {model}")
    cfg.model = model or ckpt_model
    if not cfg.model:
        raise ConfigError(f"{ref.weights} is not inside an archzoo run: pass --model NAME (and --data SPEC)")
    cfg.task = task or meta.get("task") or cfg.task
    data_spec = data or run_info.get("data") or (saved.get("data") if saved else None)
    if not data_spec:
        raise ConfigError(f"{ref.weights} is not inside an archzoo run: pass --data SPEC (e.g. imagefolder:PATH)")
    cfg.data = data_spec
    if img_size is None and not saved:
        import timm

        pc = timm.models.get_pretrained_cfg(cfg.model)
        img_size = int(pc.input_size[-1]) if pc is not None and getattr(pc, "input_size", None) else 224
    cfg.img_size = img_size or cfg.img_size
    cfg.in_chans = in_chans or cfg.in_chans
    cfg.download = download
    cfg.augment = False
    task_cls = get_task(cfg.task)
    t = task_cls(build_options(task_cls.Options, cfg.task_options, f"task {cfg.task}"), cfg)
    cfg.img_size = cfg.img_size or task_cls.default_img_size

    dist_info = init_distributed(device)
    try:
        amp_dtype = resolve_amp(amp or cfg.amp, dist_info.device)
        bundle = t.build_data(splits=(split,))
        saved_kwargs = dict(meta.get("model_kwargs") or run_info.get("model_kwargs") or {})
        kwargs = t.model_kwargs(bundle)
        if saved_kwargs:  # a run's checkpoint: its own kwargs, which must fit the data
            for key in ("num_classes", "in_chans"):
                if key in saved_kwargs and key in kwargs and saved_kwargs[key] != kwargs[key]:
                    raise CheckpointError(f"checkpoint {ref.weights} has {key}={saved_kwargs[key]} but {bundle.spec} "
                                          f"needs {kwargs[key]}")
            kwargs = saved_kwargs
        net = t.build_model(kwargs)
        if ref.meta is not None:  # archzoo's own checkpoint: exact keys
            load_state_dict_strict(net, read_state_dict(ref.weights), what=f"checkpoint {ref.weights}")
        else:  # timm's or the authors': through the family's converter
            try:
                load_checkpoint(net, ref.weights)
            except CheckpointMismatchError as e:  # readable, but not this model's tensors
                raise CheckpointMismatchError(f"{str(e).splitlines()[0]} (is it a checkpoint of another model than {cfg.model}?)") from None
        net.to(dist_info.device)
        if cfg.channels_last:
            net.to(memory_format=torch.channels_last)
        if output is not None:
            out_dir = Path(output).expanduser()
        elif ref.run_dir is not None:
            out_dir = ref.run_dir / "eval"
        else:
            out_dir = Path("runs") / f"eval-{cfg.model}"
        check_writable(out_dir)
        console = RunConsole(enabled=dist_info.is_main, quiet=quiet)
        loader = eval_loader(bundle.split(split), batch_size or cfg.eval_batch_size, dist_info, workers)
        console.start(f"eval {split}", total=len(loader), training=False)
        res = evaluate(t, net, loader, bundle, dist_info, amp_dtype=amp_dtype, channels_last=cfg.channels_last,
                       on_batch=lambda n: console.advance(1))
        console.stop()
    finally:
        cleanup_distributed()
    split_name = bundle.test_split if split == "test" else split
    tag = (ref.weights.parent.name if ref.meta is not None else ref.weights.stem) + f"-{split}"
    out = CheckpointEvaluation(res, cfg.task, cfg.model, bundle.spec, split_name, ref.weights, t.describe_result(res))
    if dist_info.is_main:
        out.files.append(write_json(out_dir / f"{tag}.json", out.as_dict()))
        out.files += t.save_results(res, bundle, out_dir, tag,
                                    title=f"{cfg.model} on {bundle.spec} {split_name}: {t.describe_result(res)}")
    return out
