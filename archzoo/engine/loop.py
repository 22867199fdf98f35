"""The training loop behind ``archzoo train``: plain PyTorch, resumable bit for bit.

Exact resumption rests on three things:

1. data order: epoch ``e`` visits a permutation drawn from a generator seeded by ``seed + e``
   (torch's DistributedSampler), and each sample's augmentation is seeded by (seed, epoch, index)
   (:class:`archzoo.data.EpochSeededDataset`), so a run restarted at step ``s`` of epoch ``e`` simply
   skips the first ``s`` batches' indices without loading them;
2. state: weights, EMA, optimizer, grad scaler and every rank's RNG states are checkpointed at each
   epoch end and, with ``ckpt_steps``, every N steps inside an epoch; the learning rate is a pure
   function of the global step (timm's scheduler, ``step_update(step)`` before every update);
3. the running sums of the epoch's training logs travel with the checkpoint too.

The loop knows nothing of any task: the task (:mod:`archzoo.engine.plugins`, registered by name)
provides data, model, the training step's loss and logged values, evaluation and the primary metric;
methods change the model before training or wrap the training step.

On the CPU with the same seed and thread count, the resumed run's weights equal the uninterrupted
run's bit for bit (``tests/engine/test_resume.py``). On GPUs the same holds with ``--deterministic``
as far as cuDNN/cuBLAS kernels are deterministic.
"""
from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

import archzoo
from archzoo.checkpoint import load_state_dict_strict, read_state_dict
from archzoo.engine import checkpoints as ck
from archzoo.engine.config import TrainConfig
from archzoo.engine.ddp import (
    DistInfo,
    ResumableDistributedSampler,
    all_reduce_sum,
    barrier,
    broadcast_object,
    cleanup_distributed,
    gather_objects,
    init_distributed,
)
from archzoo.engine.evaluate import CheckpointEvaluation, autocast_context, eval_loader, evaluate
from archzoo.engine.plots import plot_curves
from archzoo.engine.plugins import EvalOutput, Method, StepOutput, Task, build_options, get_method, get_task, load_plugins, move_batch
from archzoo.engine.progress import RunConsole
from archzoo.engine.rundir import check_writable, create_run_dir, plan_run_dir, remove_created
from archzoo.engine.state import TrainState
from archzoo.errors import CheckpointError, ConfigError, DivergedError, RunDirError
from archzoo.io import write_csv, write_json

__all__ = ["train", "TrainResult", "resolve_amp", "resolve_plugins", "metric_columns", "epochs_done"]


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_metric: str          # the task's primary metric
    best_value: float | None  # its best validation value
    test: EvalOutput | None   # the test split, evaluated on the best checkpoint
    test_split: str
    seconds: float
    summary: dict[str, Any]


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """``auto``: bfloat16 on GPUs that support it, float16 on older ones, full precision on the CPU."""
    if amp == "off":
        return None
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return None
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError("--amp fp16 needs a CUDA device (use bf16 or off on the CPU)")
        return torch.float16
    return torch.bfloat16


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _debug_pause(global_step: int) -> None:
    """Test hook: with ARCHZOO_DEBUG_PAUSE_AT_STEP=N the process stops after update N and waits to
    be killed (tests/engine/test_resume.py SIGKILLs it there, mid-epoch)."""
    want = os.environ.get("ARCHZOO_DEBUG_PAUSE_AT_STEP")
    if want and int(want) == global_step:
        print(f"archzoo-debug: paused after step {global_step}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)


def resolve_plugins(cfg: TrainConfig) -> tuple[Task, list[Method]]:
    """The run's task and methods, built from ``cfg`` (plug-ins loaded first). Fills what the user
    left unset (model, input size, full option tables) into ``cfg``, which is then validated."""
    cfg.plugins = [str(Path(p).expanduser().resolve()) if p.endswith(".py") else p for p in cfg.plugins]
    load_plugins(cfg.plugins)  # files by absolute path: --resume and `archzoo eval` may run elsewhere
    task_cls = get_task(cfg.task)
    task_opts = build_options(task_cls.Options, cfg.task_options, f"task {cfg.task}")
    cfg.task_options = dataclasses.asdict(task_opts)
    method_objs = []
    for name in cfg.methods:
        m_cls = get_method(name)
        if m_cls.tasks is not None and cfg.task not in m_cls.tasks:
            raise ConfigError(f"method {name} works with task(s) {', '.join(m_cls.tasks)}, not {cfg.task}")
        opts = build_options(m_cls.Options, cfg.method_options.get(name), f"method {name}")
        cfg.method_options[name] = dataclasses.asdict(opts)
        method_objs.append(m_cls(opts, cfg))
    for m in method_objs:
        m.configure(cfg)
    if cfg.model is None:
        if not task_cls.default_model:
            raise ConfigError(f"task {cfg.task} has no default model: pass --model")
        cfg.model = task_cls.default_model
    if cfg.img_size is None:
        cfg.img_size = task_cls.default_img_size
    cfg.validate()
    return task_cls(task_opts, cfg), method_objs


def metric_columns(task: Task, methods: list[Method]) -> tuple[list[str], list[str]]:
    """The training-log keys and the ``metrics.csv`` columns of a run of ``task`` with ``methods``."""
    keys = list(dict.fromkeys([*task.train_logs, *(k for m in methods for k in m.train_logs)]))
    cols = ["epoch", "steps", "lr", *(f"train_{k}" for k in keys), *(f"val_{k}" for k in task.eval_keys),
            "epoch_seconds", "samples_per_s"]
    return keys, cols


def _as_float(v: Any) -> float:
    return float(v.detach().float().item()) if isinstance(v, torch.Tensor) else float(v)


class _Trainer:
    def __init__(self, cfg: TrainConfig, task: Task, methods: list[Method], dist_info: DistInfo, *,
                 output: str | Path, name: str | None, resume_dir: Path | None, console: RunConsole) -> None:
        self.cfg = cfg
        self.task = task
        self.methods = methods
        self.dist = dist_info
        self.console = console
        self.resume_dir = resume_dir
        self.device = dist_info.device
        self.written: list[str] = []  # files this process wrote (rank 0 only; traced for tests)
        self.log_keys, self.columns = metric_columns(task, methods)

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cfg.threads = torch.get_num_threads()
        self.amp_dtype = resolve_amp(cfg.amp, self.device)
        if cfg.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=True)

        # -- everything that can fail on user input happens before the run folder exists --------
        self.data = task.build_data()
        self.train_ds = self.data.split("train")
        per_rank = len(self.train_ds) // dist_info.world_size  # type: ignore[arg-type]
        self.steps_per_epoch = per_rank // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"the training split has {len(self.train_ds)} samples: too few for --batch-size {cfg.batch_size} "  # type: ignore[arg-type]
                f"on {dist_info.world_size} process(es)"
            )
        self.model_kwargs = task.model_kwargs(self.data)
        _seed_all(cfg.seed)  # same initial weights on every rank
        self.net = task.build_model(self.model_kwargs)
        self.init_notes: list[str] = []
        if resume_dir is None:
            self.init_notes = task.init_weights(self.net, cfg.init_checkpoint)
        self.resume_ckpt: Path | None = None
        if resume_dir is not None:
            check_writable(resume_dir)
            self.run_dir = resume_dir
            self.resume_ckpt = ck.find_checkpoint(resume_dir, "last")
        else:
            kind, _, arg = self.data.spec.partition(":")
            label = Path(arg).name if kind == "imagefolder" else kind
            planned, err = None, None
            if dist_info.is_main:  # rank 0 picks the folder; every rank learns the result (or the error)
                try:
                    planned = str(plan_run_dir(output, name, f"{cfg.model}-{label}"))
                except RunDirError as e:
                    err = str(e)
            planned, err = broadcast_object((planned, err))
            if err:
                raise RunDirError(err)
            self.run_dir = Path(planned)

    # -- files (rank 0 only) ---------------------------------------------------------------------
    def _wrote(self, path: Path) -> None:
        self.written.append(str(path.relative_to(self.run_dir)))

    def _write_config(self) -> None:
        import timm

        d = self.data
        payload = {
            "archzoo_version": archzoo.__version__,
            "train": self.cfg.to_dict(),
            "run": {
                "world_size": self.dist.world_size,
                "device": str(self.device),
                "amp_dtype": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else None,
                "data": d.spec,
                "data_sources": d.sources,
                "num_classes": d.num_classes,
                "class_names": d.class_names,
                "input_size": list(d.input_size),
                "mean": list(d.mean),
                "std": list(d.std),
                "model_kwargs": self.model_kwargs,
                "steps_per_epoch": self.steps_per_epoch,
                "test_split": d.test_split,
                "metric_columns": self.columns,
                "primary_metric": self.task.primary,
                "torch": torch.__version__,
                "timm": timm.__version__,
                "python": platform.python_version(),
            },
        }
        self._wrote(write_json(self.run_dir / "config.json", payload))

    def _write_metrics(self, rows: list[dict[str, Any]]) -> None:
        self._wrote(write_csv(self.run_dir / "metrics.csv", rows, self.columns))
        try:
            self._wrote(plot_curves(rows, self.run_dir / "curves.png", title=f"{self.cfg.model} on {self.data.spec}",
                                    metric=self.task.primary, metric_label=self.task.primary_label))
        except Exception as e:  # a figure must never stop training
            self.console.warn(f"could not draw curves.png: {e}")

    # -- checkpoints -----------------------------------------------------------------------------
    def _save(self, names: list[str], st: TrainState, sums: torch.Tensor) -> None:
        # collectives first, on every rank
        st.rng = gather_objects(ck.rng_state())
        st.sums = gather_objects(sums.tolist())
        if not self.dist.is_main:
            return
        net = _unwrap(self.model)
        st.optimizer = self.optimizer.state_dict()
        st.scheduler = self.scheduler.state_dict() if self.scheduler is not None else None
        st.scaler = self.scaler.state_dict() if self.scaler is not None else None
        meta = {"task": self.cfg.task, "model": self.cfg.model, "model_kwargs": self.model_kwargs}
        for name in names:
            if name == "best":
                # best/ holds the weights that were validated: the EMA's when the run keeps one
                weights = ck.model_weights(self.ema.module if self.ema is not None else net)
                m = {**meta, "weights": "ema" if self.ema is not None else "model"}
                path = ck.save_checkpoint_dir(self.run_dir, "best", weights=weights, meta=m, state=st)
            else:
                ema_w = ck.model_weights(self.ema.module) if self.ema is not None else None
                path = ck.save_checkpoint_dir(self.run_dir, name, weights=ck.model_weights(net), meta={**meta, "weights": "model"},
                                              state=st, ema_weights=ema_w)
            self._wrote(path)
        self._ckpt_written = True

    def _restore(self) -> tuple[TrainState, torch.Tensor]:
        assert self.resume_ckpt is not None
        meta = ck.read_meta(self.resume_ckpt)
        if meta.get("model") != self.cfg.model:
            raise CheckpointError(f"{self.resume_ckpt} is a checkpoint of {meta.get('model')}, not {self.cfg.model}")
        st = TrainState.load(self.resume_ckpt)
        net = _unwrap(self.model)
        load_state_dict_strict(net, read_state_dict(self.resume_ckpt / ck.WEIGHTS), what=f"checkpoint {self.resume_ckpt}")
        if self.ema is not None:
            ema_path = self.resume_ckpt / ck.EMA_WEIGHTS
            load_state_dict_strict(self.ema.module, read_state_dict(ema_path), what=f"EMA checkpoint {ema_path}")
        self.optimizer.load_state_dict(st.optimizer)
        if self.scheduler is not None and st.scheduler is not None:
            self.scheduler.load_state_dict(st.scheduler)
        if self.scaler is not None and st.scaler is not None:
            self.scaler.load_state_dict(st.scaler)
        same_world = st.world_size == self.dist.world_size and len(st.rng) == self.dist.world_size
        if same_world and st.log_keys == self.log_keys:
            ck.set_rng_state(st.rng[self.dist.rank])
            sums = torch.tensor(st.sums[self.dist.rank], dtype=torch.float64)
        else:
            self.console.warn(
                f"the run was checkpointed with {st.world_size} process(es) and resumes with "
                f"{self.dist.world_size}: it continues, but not bit for bit"
            )
            _seed_all(self.cfg.seed + 7919 * self.dist.rank + st.global_step)
            sums = self._zero_sums()
        if st.steps_per_epoch != self.steps_per_epoch and st.step_in_epoch:
            raise CheckpointError(
                f"{self.resume_ckpt} was saved mid-epoch with {st.steps_per_epoch} steps per epoch; "
                f"this setup has {self.steps_per_epoch}: resume with the same number of processes"
            )
        return st, sums

    def _zero_sums(self) -> torch.Tensor:
        return torch.zeros(2 * len(self.log_keys), dtype=torch.float64)  # per key: sum of value x n, n

    def _train_row(self, sums: torch.Tensor) -> dict[str, float | None]:
        row: dict[str, float | None] = {}
        for i, k in enumerate(self.log_keys):
            n = float(sums[2 * i + 1])
            row[f"train_{k}"] = round(float(sums[2 * i]) / n, 6) if n else None
        return row

    def _step_fn(self) -> Any:
        """The training step: the task's, wrapped by each method (the first given is the outermost)."""
        step = self.task.training_step
        for m in reversed(self.methods):
            step = (lambda m, inner: lambda model, batch: m.training_step(self.task, model, batch, inner))(m, step)
        return step

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        d = self.dist
        created: list[Path] = []
        if self.resume_dir is None:
            err = None
            if d.is_main:
                try:
                    created = create_run_dir(self.run_dir)
                except RunDirError as e:
                    err = str(e)
            err = broadcast_object(err)
            if err:
                raise RunDirError(err)
        try:
            return self._run()
        except BaseException:
            # a run that fails before its first checkpoint leaves no folder behind
            if d.is_main and created and not self._ckpt_written:
                remove_created(created)
            raise

    _ckpt_written = False

    def _run(self) -> TrainResult:
        cfg, d, console, task = self.cfg, self.dist, self.console, self.task
        t_start = time.perf_counter()
        self.net.to(self.device)
        if cfg.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if self.methods:
            example = task.example_batch(self.data, self.device)
            for m in self.methods:
                note = m.setup(self.net, task, example)
                if note:
                    console.note(note)
        _seed_all(cfg.seed + 7919 * d.rank)  # per-rank stream for dropout / drop-path

        from timm.optim import create_optimizer_v2
        from timm.scheduler import create_scheduler_v2
        from timm.utils import ModelEmaV3

        self.optimizer = create_optimizer_v2(self.net, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                             momentum=cfg.momentum)
        self.scheduler = None
        if cfg.sched != "none":
            # the schedule runs per update (step_on_epochs=False); a warm-up as long as the whole run
            # is shortened so that the run still reaches its peak learning rate
            self.scheduler, _ = create_scheduler_v2(
                self.optimizer, sched=cfg.sched, num_epochs=cfg.epochs, decay_epochs=max(1, cfg.epochs // 3),
                decay_milestones=[max(1, cfg.epochs // 2), max(1, 3 * cfg.epochs // 4)],
                warmup_epochs=min(cfg.warmup_epochs, cfg.epochs - 1), warmup_lr=cfg.warmup_lr, min_lr=cfg.min_lr,
                step_on_epochs=False, updates_per_epoch=self.steps_per_epoch,
            )
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.ema = ModelEmaV3(self.net, decay=cfg.ema_decay, use_warmup=True) if cfg.ema else None
        self.model: nn.Module = self.net
        if d.enabled:
            self.model = nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device] if self.device.type == "cuda" else None
            )
        step_fn = self._step_fn()

        st = TrainState(steps_per_epoch=self.steps_per_epoch, world_size=d.world_size, log_keys=list(self.log_keys),
                        best={"epoch": None, "metric": task.primary, "value": None})
        sums = self._zero_sums()  # this rank, this epoch
        if self.resume_ckpt is not None:
            st, sums = self._restore()
            st.steps_per_epoch, st.world_size, st.log_keys = self.steps_per_epoch, d.world_size, list(self.log_keys)
            if st.epoch >= cfg.epochs:
                console.line(f"{self.run_dir} already finished its {cfg.epochs} epoch(s) (global step {st.global_step}): "
                             "nothing to train; evaluating its best checkpoint on the test split again")
            else:
                console.line(f"resuming {self.run_dir} at epoch {st.epoch + 1}, step {st.step_in_epoch} (global step {st.global_step})")
        elif self.resume_dir is not None:
            console.line(f"{self.run_dir} has no checkpoint yet: starting it from the beginning")
        if d.is_main:
            ck.clean_stale_temp(self.run_dir)
            if self.resume_dir is None:
                self._write_config()
            if st.history:
                self._write_metrics(st.history)
            elif (self.run_dir / "metrics.csv").exists():
                (self.run_dir / "metrics.csv").unlink()
        if self.resume_dir is None:
            console.line(
                f"training {cfg.model} ({sum(p.numel() for p in self.net.parameters()):,} parameters) for {cfg.task}"
                f"{' with ' + ', '.join(cfg.methods) if cfg.methods else ''} on "
                f"{self.data.spec} {'x'.join(map(str, self.data.input_size))}: {cfg.epochs} epochs x "
                f"{self.steps_per_epoch} steps x {cfg.batch_size} samples x {d.world_size} process(es); "
                f"device {self.device}{', ' + str(self.amp_dtype).replace('torch.', '') if self.amp_dtype else ''}; "
                f"run folder {self.run_dir}"
            )
            for note in self.init_notes:
                console.line(note)

        sampler = ResumableDistributedSampler(self.train_ds, num_replicas=d.world_size, rank=d.rank, seed=cfg.seed)
        self.train_ds.set_seed(cfg.seed)  # type: ignore[attr-defined]
        val_loader = eval_loader(self.data.split("val"), cfg.eval_batch_size, d, cfg.workers)
        trace: dict[str, Any] = {"rank": d.rank, "world_size": d.world_size, "indices": {}}
        best_weights: dict[str, torch.Tensor] | None = None
        steps = self.steps_per_epoch
        start_epoch, start_step = st.epoch, st.step_in_epoch

        for epoch in range(start_epoch, cfg.epochs):
            if cfg.max_steps and st.global_step >= cfg.max_steps:
                break
            skip = start_step if epoch == start_epoch else 0
            if skip == 0:
                sums = self._zero_sums()
            sampler.set_epoch(epoch)
            sampler.set_start(skip * cfg.batch_size)
            self.train_ds.set_epoch(epoch)  # type: ignore[attr-defined]
            if os.environ.get("ARCHZOO_DEBUG_TRACE_DIR"):
                trace["indices"][str(epoch)] = list(sampler)[: (steps - skip) * cfg.batch_size]
            # a private generator: the loader's worker base seed must not consume the global RNG,
            # whose state the checkpoints carry
            loader = DataLoader(self.train_ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                                drop_last=True, pin_memory=self.device.type == "cuda",
                                generator=torch.Generator().manual_seed(cfg.seed + epoch))
            self.model.train()
            console.start(f"epoch {epoch + 1}/{cfg.epochs}", total=steps, completed=skip)
            t0, seen, done = time.perf_counter(), 0, skip
            for step, batch in enumerate(loader, start=skip):
                batch = move_batch(batch, self.device, cfg.channels_last)
                if self.scheduler is not None:
                    self.scheduler.step_update(num_updates=st.global_step)
                with autocast_context(self.device, self.amp_dtype):
                    out: StepOutput = step_fn(self.model, batch)
                loss = out.loss
                if not torch.isfinite(loss):
                    raise DivergedError(f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: lower --lr or add --clip-grad")
                self.optimizer.zero_grad(set_to_none=True)
                if self.scaler is not None:
                    self.scaler.scale(loss).backward()
                    if cfg.clip_grad:
                        self.scaler.unscale_(self.optimizer)
                        nn.utils.clip_grad_norm_(self.net.parameters(), cfg.clip_grad)
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                else:
                    loss.backward()
                    if cfg.clip_grad:
                        nn.utils.clip_grad_norm_(self.net.parameters(), cfg.clip_grad)
                    self.optimizer.step()
                st.global_step += 1
                if self.ema is not None:
                    self.ema.update(self.net, step=st.global_step)
                n = int(out.n)
                add = torch.zeros_like(sums)
                for i, k in enumerate(self.log_keys):
                    if k in out.logs:
                        add[2 * i] = _as_float(out.logs[k]) * n
                        add[2 * i + 1] = n
                sums += add
                seen += n
                console.advance(1, loss=_as_float(loss), ips=seen * d.world_size / max(time.perf_counter() - t0, 1e-9))
                if cfg.ckpt_steps and (step + 1) % cfg.ckpt_steps == 0 and step + 1 < steps:
                    st.epoch, st.step_in_epoch = epoch, step + 1
                    self._save(["last"], st, sums)
                _debug_pause(st.global_step)
                done = step + 1
                if cfg.max_steps and st.global_step >= cfg.max_steps:
                    break
            console.stop()
            partial = done < steps  # stopped by --max-steps: checkpoint the position inside the epoch
            epoch_s = time.perf_counter() - t0

            tot = all_reduce_sum(sums.clone().to(self.device)).cpu()
            eval_net = self.ema.module if self.ema is not None else self.net
            val = evaluate(task, eval_net, val_loader, self.data, d, amp_dtype=self.amp_dtype, channels_last=cfg.channels_last)
            row: dict[str, Any] = {"epoch": epoch + 1, "steps": done, "lr": self.optimizer.param_groups[0]["lr"],
                                   **self._train_row(tot)}
            row.update({f"val_{k}": round(v, 6) for k, v in val.metrics.items() if k in task.eval_keys})
            row["epoch_seconds"] = round(epoch_s, 3)
            row["samples_per_s"] = round(seen * d.world_size / max(epoch_s, 1e-9), 1)
            st.history = [r for r in st.history if r["epoch"] != epoch + 1]  # a partial row is replaced on resume
            st.history.append(row)
            value = val.metrics.get(task.primary)
            improved = value is not None and value == value and task.better(value, st.best.get("value"))
            if improved:
                st.best = {"epoch": epoch + 1, "metric": task.primary, "value": value}
                # every rank keeps the best weights in memory: other nodes may not see rank 0's disk
                best_weights = {k: v.clone() for k, v in ck.model_weights(eval_net).items()}
            if d.is_main:
                self._write_metrics(st.history)
            # a partial epoch is saved at its position inside the epoch, so that --resume finishes it
            st.epoch, st.step_in_epoch = (epoch, done) if partial else (epoch + 1, 0)
            self._save((["best"] if improved else []) + ["last"], st, sums if partial else self._zero_sums())
            train_part = "  ".join(f"{k} {row[f'train_{k}']:.4f}" for k in self.log_keys if row.get(f"train_{k}") is not None)
            console.line(
                f"epoch {epoch + 1}/{cfg.epochs}  train {train_part}  val {task.describe_result(val)}  "
                f"({epoch_s:.1f}s, {row['samples_per_s']:.0f}/s)"
                + ("  *best*" if improved else "")
                + (f"  (stopped at step {done}/{steps}: --max-steps {cfg.max_steps})" if partial else "")
            )
            if partial:
                break

        barrier()
        # -- the test split, evaluated on the best checkpoint exactly as `archzoo eval` does --------
        if best_weights is None:  # resumed after the best epoch: read it back
            best_dir = ck.find_checkpoint(self.run_dir, "best")
            if best_dir is not None:
                best_weights = read_state_dict(best_dir / ck.WEIGHTS)
        test = None
        test_split = self.data.test_split
        if best_weights is not None:
            eval_net = self.ema.module if self.ema is not None else self.net
            load_state_dict_strict(eval_net, best_weights, what="best weights")
            test = evaluate(task, eval_net, eval_loader(self.data.split("test"), cfg.eval_batch_size, d, cfg.workers),
                            self.data, d, amp_dtype=self.amp_dtype, channels_last=cfg.channels_last)
            if d.is_main:
                report = CheckpointEvaluation(test, cfg.task, cfg.model, self.data.spec, test_split,
                                              self.run_dir / "best" / ck.WEIGHTS)
                self._wrote(write_json(self.run_dir / "eval" / "best-test.json", report.as_dict()))
                try:
                    for p in task.save_results(test, self.data, self.run_dir / "eval", "best-test",
                                               title=f"{cfg.model} on {self.data.spec} {test_split}: {task.describe_result(test)}"):
                        self._wrote(p)
                except Exception as e:  # a figure must never lose a finished run
                    console.warn(f"could not save the test figures: {e}")
        seconds = time.perf_counter() - t_start
        summary: dict[str, Any] = {
            "task": cfg.task,
            "methods": list(cfg.methods),
            "model": cfg.model,
            "data": self.data.spec,
            "epochs": cfg.epochs,
            "primary_metric": task.primary,
            "best_epoch": st.best.get("epoch"),
            f"best_val_{task.primary}": st.best.get("value"),
            "test_split": test_split,
            **{f"test_{k}": v for k, v in (test.metrics.items() if test else ())},
            "test_samples": test.n if test else None,
            "seconds_this_session": round(seconds, 2),
            "global_step": st.global_step,
            "world_size": d.world_size,
            "threads": cfg.threads,
        }
        if d.is_main:
            self._wrote(write_json(self.run_dir / "summary.json", summary))
        best_v = st.best.get("value")
        rows = [
            ("model", cfg.model),
            ("task", cfg.task + (f" with {', '.join(cfg.methods)}" if cfg.methods else "")),
            ("data", f"{self.data.spec} ({'x'.join(map(str, self.data.input_size))})"),
            ("epochs", str(cfg.epochs)),
            (f"best val {task.primary}", f"{best_v:.4g} (epoch {st.best.get('epoch')})" if best_v is not None else "-"),
        ]
        if test is not None:
            rows.append((f"{test_split} (best checkpoint, {test.n} samples)", task.describe_result(test)))
        rows.append(("time", f"{seconds:.1f}s"))
        console.table("archzoo train: summary", rows)
        # on a line of its own, never folded by the table: --resume and `archzoo eval` take this path
        console.line(f"run folder: {self.run_dir}")
        self._trace(trace)
        return TrainResult(self.run_dir, int(st.best.get("epoch") or 0), task.primary, best_v, test, test_split,
                           seconds, summary)

    def _trace(self, trace: dict[str, Any]) -> None:
        """Test hook: with ARCHZOO_DEBUG_TRACE_DIR each rank records the samples it trained on and the
        files it wrote, outside the run folder."""
        out = os.environ.get("ARCHZOO_DEBUG_TRACE_DIR")
        if not out:
            return
        trace["wrote"] = sorted(set(self.written))
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"rank{self.dist.rank}.json").write_text(json.dumps(trace), encoding="utf-8")


def train(
    cfg: TrainConfig,
    *,
    output: str | Path = "runs",
    name: str | None = None,
    resume_dir: str | Path | None = None,
    console: RunConsole | None = None,
) -> TrainResult:
    """Run (or resume) one training run. User errors raise :class:`archzoo.errors.ArchzooError`
    subclasses before any file is written."""
    cfg = replace(cfg, methods=list(cfg.methods), task_options=dict(cfg.task_options),
                  method_options={k: dict(v) for k, v in cfg.method_options.items()}, plugins=list(cfg.plugins))
    task, methods = resolve_plugins(cfg)
    dist_info = init_distributed(cfg.device)
    console = console or RunConsole(enabled=dist_info.is_main, quiet=cfg.quiet)
    if not dist_info.is_main:
        console.enabled = False
    try:
        trainer = _Trainer(cfg, task, methods, dist_info, output=output, name=name,
                           resume_dir=Path(resume_dir) if resume_dir is not None else None, console=console)
        return trainer.run()
    finally:
        cleanup_distributed()


def epochs_done(run_dir: str | Path) -> float:
    """How far a run got, in epochs (from its last checkpoint); 0 if none."""
    p = ck.find_checkpoint(run_dir, "last")
    return TrainState.load(p).epochs_done if p is not None else 0.0
