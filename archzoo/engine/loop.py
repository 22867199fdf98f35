"""The training loop behind ``archzoo train``: plain PyTorch, resumable bit for bit.

Exact resumption rests on three things:

1. data order: epoch ``e`` visits a permutation drawn from a generator seeded by ``seed + e``
   (torch's DistributedSampler), and each sample's augmentation is seeded by (seed, epoch, index)
   (:class:`archzoo.data.EpochSeededDataset`), so a run restarted at step ``s`` of epoch ``e`` simply
   skips the first ``s`` batches' indices without loading them;
2. state: weights, EMA, optimizer, grad scaler and every rank's RNG states are checkpointed at each
   epoch end and, with ``ckpt_steps``, every N steps inside an epoch; the learning rate is a pure
   function of the global step (timm's scheduler, ``step_update(step)`` before every update);
3. the running sums of the epoch's training metrics travel with the checkpoint too.

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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

import archzoo
from archzoo.checkpoint import load_state_dict_strict, read_state_dict
from archzoo.data import DataOptions, build_data
from archzoo.engine import checkpoints as ck
from archzoo.engine.config import ConfigError, TrainConfig
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
from archzoo.engine.evaluate import EvalResult, autocast_context, eval_loader, evaluate
from archzoo.engine.modeling import build_model, load_init_checkpoint, resolve_model_kwargs, zero_classifier
from archzoo.engine.plots import plot_curves
from archzoo.engine.progress import RunConsole
from archzoo.engine.rundir import (
    RunDirError,
    check_writable,
    create_run_dir,
    plan_run_dir,
    remove_created,
    write_csv,
)

__all__ = ["train", "TrainResult", "METRIC_COLUMNS", "resolve_amp"]

METRIC_COLUMNS = (
    "epoch", "steps", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "val_top5", "epoch_seconds", "images_per_s",
)


@dataclass
class TrainResult:
    run_dir: Path
    best_epoch: int
    best_val_acc: float
    test: EvalResult | None
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


class _Trainer:
    def __init__(self, cfg: TrainConfig, dist_info: DistInfo, *, output: str | Path, name: str | None,
                 resume_dir: Path | None, console: RunConsole) -> None:
        self.cfg = cfg
        self.dist = dist_info
        self.console = console
        self.resume_dir = resume_dir
        self.device = dist_info.device
        self.written: list[str] = []  # files this process wrote (rank 0 only; traced for tests)

        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        cfg.threads = torch.get_num_threads()
        self.amp_dtype = resolve_amp(cfg.amp, self.device)
        if cfg.deterministic:
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=True)

        # -- everything that can fail on user input happens before the run folder exists --------
        self.data = build_data(cfg.data, DataOptions(cfg.img_size, cfg.in_chans, cfg.download, cfg.augment))
        self.train_ds = self.data.split("train")
        per_rank = len(self.train_ds) // dist_info.world_size  # type: ignore[arg-type]
        self.steps_per_epoch = per_rank // cfg.batch_size
        if self.steps_per_epoch < 1:
            raise ConfigError(
                f"the training split has {len(self.train_ds)} images: too few for --batch-size {cfg.batch_size} "  # type: ignore[arg-type]
                f"on {dist_info.world_size} process(es)"
            )
        extra = dict(cfg.model_kwargs)
        if cfg.drop_path:
            extra["drop_path_rate"] = cfg.drop_path
        self.model_kwargs = resolve_model_kwargs(cfg.model, self.data.num_classes, cfg.in_chans, cfg.img_size, extra)
        _seed_all(cfg.seed)  # same initial weights on every rank
        self.net = build_model(cfg.model, self.model_kwargs)
        self.init_skipped: list[str] = []
        if cfg.init_checkpoint and resume_dir is None:
            self.init_skipped = load_init_checkpoint(self.net, cfg.init_checkpoint, cfg.model)
            if cfg.zero_head and self.init_skipped:
                zero_classifier(self.net, only=self.init_skipped)
        elif cfg.zero_head:
            zero_classifier(self.net)
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

        payload = {
            "archzoo_version": archzoo.__version__,
            "train": self.cfg.to_dict(),
            "run": {
                "world_size": self.dist.world_size,
                "device": str(self.device),
                "amp_dtype": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else None,
                "data": self.data.spec,
                "data_sources": self.data.sources,
                "num_classes": self.data.num_classes,
                "class_names": self.data.class_names,
                "input_size": list(self.data.input_size),
                "mean": list(self.data.mean),
                "std": list(self.data.std),
                "model_kwargs": self.model_kwargs,
                "steps_per_epoch": self.steps_per_epoch,
                "test_split": self.data.test_split,
                "torch": torch.__version__,
                "timm": timm.__version__,
                "python": platform.python_version(),
            },
        }
        self._wrote(ck.write_json(self.run_dir / "config.json", payload))

    def _write_metrics(self, rows: list[dict[str, Any]]) -> None:
        self._wrote(write_csv(self.run_dir / "metrics.csv", rows, METRIC_COLUMNS))
        try:
            self._wrote(plot_curves(rows, self.run_dir / "curves.png", title=f"{self.cfg.model} on {self.data.spec}"))
        except Exception as e:  # a figure must never stop training
            self.console.warn(f"could not draw curves.png: {e}")

    # -- checkpoints -----------------------------------------------------------------------------
    def _save(self, names: list[str], *, epoch: int, step: int, global_step: int, accum: torch.Tensor,
              history: list[dict[str, Any]], best: dict[str, Any]) -> None:
        # collectives first, on every rank
        rngs = gather_objects(ck.rng_state())
        accums = gather_objects(accum.tolist())
        if not self.dist.is_main:
            return
        net = _unwrap(self.model)
        state = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rngs,
        }
        meta = {
            "model": self.cfg.model,
            "model_kwargs": self.model_kwargs,
            "epoch": epoch,
            "step_in_epoch": step,
            "global_step": global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.dist.world_size,
            "accum": accums,
            "history": history,
            "best": best,
        }
        for name in names:
            if name == "best":
                # best/ holds the weights that were validated: the EMA's when the run keeps one
                weights = ck.model_weights(self.ema.module if self.ema is not None else net)
                m = {**meta, "weights": "ema" if self.ema is not None else "model"}
                path = ck.save_checkpoint_dir(self.run_dir, "best", weights=weights, meta=m, state=state)
            else:
                ema_w = ck.model_weights(self.ema.module) if self.ema is not None else None
                path = ck.save_checkpoint_dir(self.run_dir, name, weights=ck.model_weights(net), meta={**meta, "weights": "model"},
                                              state=state, ema_weights=ema_w)
            self._wrote(path)

    def _restore(self) -> tuple[int, int, int, torch.Tensor, list[dict[str, Any]], dict[str, Any]]:
        assert self.resume_ckpt is not None
        meta = ck.read_meta(self.resume_ckpt)
        if meta.get("model") != self.cfg.model:
            raise ck.CheckpointError(f"{self.resume_ckpt} is a checkpoint of {meta.get('model')}, not {self.cfg.model}")
        net = _unwrap(self.model)
        load_state_dict_strict(net, read_state_dict(self.resume_ckpt / ck.WEIGHTS), what=f"checkpoint {self.resume_ckpt}")
        if self.ema is not None:
            ema_path = self.resume_ckpt / ck.EMA_WEIGHTS
            load_state_dict_strict(self.ema.module, read_state_dict(ema_path), what=f"EMA checkpoint {ema_path}")
        state = ck.load_state_file(self.resume_ckpt)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        rngs = state.get("rng") or []
        same_world = meta.get("world_size") == self.dist.world_size and len(rngs) == self.dist.world_size
        if same_world:
            ck.set_rng_state(rngs[self.dist.rank])
            accum = torch.tensor(meta["accum"][self.dist.rank], dtype=torch.float64)
        else:
            self.console.warn(
                f"the run was checkpointed with {meta.get('world_size')} process(es) and resumes with "
                f"{self.dist.world_size}: it continues, but not bit for bit"
            )
            _seed_all(self.cfg.seed + 7919 * self.dist.rank + meta["global_step"])
            accum = torch.zeros(3, dtype=torch.float64)
        if meta.get("steps_per_epoch") != self.steps_per_epoch and meta["step_in_epoch"]:
            raise ck.CheckpointError(
                f"{self.resume_ckpt} was saved mid-epoch with {meta.get('steps_per_epoch')} steps per epoch; "
                f"this setup has {self.steps_per_epoch}: resume with the same number of processes"
            )
        return (int(meta["epoch"]), int(meta["step_in_epoch"]), int(meta["global_step"]), accum,
                list(meta.get("history", [])), dict(meta.get("best") or {}))

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
        cfg, d, console = self.cfg, self.dist, self.console
        t_start = time.perf_counter()
        self.net.to(self.device)
        if cfg.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if cfg.freeze_bn or cfg.convbn:
            from archzoo.methods.convbn import freeze_batchnorm, set_mode

            if cfg.freeze_bn:
                freeze_batchnorm(self.net)
            if cfg.convbn:
                x = torch.randn(2, cfg.in_chans, cfg.img_size, cfg.img_size, device=self.device)
                n = set_mode(self.net, cfg.convbn, x)
                console.note(f"ConvBN: {n} Conv-BatchNorm pair(s) in {cfg.convbn} mode")
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
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

        start_epoch, start_step, global_step = 0, 0, 0
        accum = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, images (this rank, this epoch)
        history: list[dict[str, Any]] = []
        best: dict[str, Any] = {"epoch": None, "val_acc": -1.0}
        if self.resume_ckpt is not None:
            start_epoch, start_step, global_step, accum, history, best = self._restore()
            console.line(f"resuming {self.run_dir} at epoch {start_epoch + 1}, step {start_step} (global step {global_step})")
        elif self.resume_dir is not None:
            console.line(f"{self.run_dir} has no checkpoint yet: starting it from the beginning")
        if d.is_main:
            ck.clean_stale_temp(self.run_dir)
            if self.resume_dir is None:
                self._write_config()
            if history:
                self._write_metrics(history)
            elif (self.run_dir / "metrics.csv").exists():
                (self.run_dir / "metrics.csv").unlink()
        if self.resume_dir is None:
            console.line(
                f"training {cfg.model} ({sum(p.numel() for p in self.net.parameters()):,} parameters) on "
                f"{self.data.spec} {'x'.join(map(str, self.data.input_size))}: {cfg.epochs} epochs x "
                f"{self.steps_per_epoch} steps x {cfg.batch_size} images x {d.world_size} process(es); "
                f"device {self.device}{', ' + str(self.amp_dtype).replace('torch.', '') if self.amp_dtype else ''}; "
                f"run folder {self.run_dir}"
            )
            if self.init_skipped:
                console.line(f"initialised from {cfg.init_checkpoint}; new classifier: {', '.join(self.init_skipped)}")

        sampler = ResumableDistributedSampler(self.train_ds, num_replicas=d.world_size, rank=d.rank, seed=cfg.seed)
        self.train_ds.set_seed(cfg.seed)  # type: ignore[attr-defined]
        val_loader = eval_loader(self.data.split("val"), cfg.eval_batch_size, d, cfg.workers)
        trace: dict[str, Any] = {"rank": d.rank, "world_size": d.world_size, "indices": {}}
        best_weights: dict[str, torch.Tensor] | None = None
        steps = self.steps_per_epoch

        for epoch in range(start_epoch, cfg.epochs):
            if cfg.max_steps and global_step >= cfg.max_steps:
                break
            skip = start_step if epoch == start_epoch else 0
            if skip == 0:
                accum = torch.zeros(3, dtype=torch.float64)
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
            for step, (x, y) in enumerate(loader, start=skip):
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                if cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                if self.scheduler is not None:
                    self.scheduler.step_update(num_updates=global_step)
                with autocast_context(self.device, self.amp_dtype):
                    if cfg.train_sizes:
                        from archzoo.methods.multires import multires_forward

                        mr = multires_forward(self.model, x, y, cfg.train_sizes, criterion=criterion,
                                              alpha=cfg.consistency_weight)
                        loss, out = mr.loss, mr.logits[0]  # logits at the largest size, for train accuracy
                    else:
                        out = self.model(x)
                        loss = criterion(out, y)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}: lower --lr or add --clip-grad")
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
                global_step += 1
                if self.ema is not None:
                    self.ema.update(self.net, step=global_step)
                n = y.numel()
                lval = float(loss.detach().float().item())
                accum += torch.tensor([lval * n, float((out.detach().argmax(1) == y).sum().item()), float(n)], dtype=torch.float64)
                seen += n
                console.advance(1, loss=lval, ips=seen * d.world_size / max(time.perf_counter() - t0, 1e-9))
                if cfg.ckpt_steps and (step + 1) % cfg.ckpt_steps == 0 and step + 1 < steps:
                    self._save(["last"], epoch=epoch, step=step + 1, global_step=global_step, accum=accum,
                               history=history, best=best)
                    self._ckpt_written = True
                _debug_pause(global_step)
                done = step + 1
                if cfg.max_steps and global_step >= cfg.max_steps:
                    break
            console.stop()
            partial = done < steps  # stopped by --max-steps: checkpoint the position inside the epoch
            epoch_s = time.perf_counter() - t0

            tot = all_reduce_sum(accum.clone().to(self.device)).cpu()
            eval_net = self.ema.module if self.ema is not None else self.net
            val = evaluate(eval_net, val_loader, self.data.num_classes, d, amp_dtype=self.amp_dtype,
                           channels_last=cfg.channels_last)
            row = {
                "epoch": epoch + 1,
                "lr": self.optimizer.param_groups[0]["lr"],
                "train_loss": round(float(tot[0] / max(tot[2], 1)), 6),
                "train_acc": round(float(100 * tot[1] / max(tot[2], 1)), 4),
                "val_loss": round(val.loss, 6),
                "val_acc": round(val.top1, 4),
                "val_top5": round(val.topk, 4),
                "epoch_seconds": round(epoch_s, 3),
                "images_per_s": round(seen * d.world_size / max(epoch_s, 1e-9), 1),
            }
            row["steps"] = done
            history = [r for r in history if r["epoch"] != epoch + 1]  # a partial row is replaced on resume
            history.append(row)
            improved = val.top1 > best["val_acc"]
            if improved:
                best = {"epoch": epoch + 1, "val_acc": val.top1}
                # every rank keeps the best weights in memory: other nodes may not see rank 0's disk
                best_weights = {k: v.clone() for k, v in ck.model_weights(eval_net).items()}
            if d.is_main:
                self._write_metrics(history)
            # a partial epoch is saved at its position inside the epoch, so that --resume finishes it
            self._save((["best"] if improved else []) + ["last"], epoch=epoch if partial else epoch + 1,
                       step=done if partial else 0, global_step=global_step,
                       accum=accum if partial else torch.zeros(3, dtype=torch.float64), history=history, best=best)
            self._ckpt_written = True
            console.line(
                f"epoch {epoch + 1}/{cfg.epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.2f}%  "
                f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2f}%  ({epoch_s:.1f}s, {row['images_per_s']:.0f} img/s)"
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
        if best_weights is not None:
            eval_net = self.ema.module if self.ema is not None else self.net
            load_state_dict_strict(eval_net, best_weights, what="best weights")
            test = evaluate(eval_net, eval_loader(self.data.split("test"), cfg.eval_batch_size, d, cfg.workers),
                            self.data.num_classes, d, amp_dtype=self.amp_dtype, channels_last=cfg.channels_last)
        seconds = time.perf_counter() - t_start
        summary = {
            "model": cfg.model,
            "data": self.data.spec,
            "epochs": cfg.epochs,
            "best_epoch": best.get("epoch"),
            "best_val_acc": best.get("val_acc"),
            "test_split": self.data.test_split,
            "test_acc": test.top1 if test else None,
            "test_top5": test.topk if test else None,
            "test_images": test.n if test else None,
            "seconds_this_session": round(seconds, 2),
            "global_step": global_step,
            "world_size": d.world_size,
            "threads": cfg.threads,
        }
        if d.is_main:
            self._wrote(ck.write_json(self.run_dir / "summary.json", summary))
        rows = [
            ("model", cfg.model),
            ("data", f"{self.data.spec} ({'x'.join(map(str, self.data.input_size))})"),
            ("epochs", str(cfg.epochs)),
            ("best val top-1", f"{best.get('val_acc', 0):.2f}% (epoch {best.get('epoch')})"),
        ]
        if test is not None:
            rows.append((f"{self.data.test_split} top-1 (best checkpoint)", f"{test.top1:.2f}% of {test.n} images"))
            rows.append((f"{self.data.test_split} top-{test.k}", f"{test.topk:.2f}%"))
        rows += [("time", f"{seconds:.1f}s"), ("run folder", str(self.run_dir))]
        console.table("archzoo train: summary", rows)
        self._trace(trace)
        return TrainResult(self.run_dir, int(best.get("epoch") or 0), float(best.get("val_acc") or 0.0), test,
                           self.data.test_split, seconds, summary)

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
    """Run (or resume) one training run. User errors raise ValueError subclasses before any file is written."""
    cfg = replace(cfg)
    cfg.validate()
    dist_info = init_distributed(cfg.device)
    console = console or RunConsole(enabled=dist_info.is_main, quiet=cfg.quiet)
    if not dist_info.is_main:
        console.enabled = False
    try:
        trainer = _Trainer(cfg, dist_info, output=output, name=name,
                           resume_dir=Path(resume_dir) if resume_dir is not None else None, console=console)
        return trainer.run()
    finally:
        cleanup_distributed()


def epochs_done(run_dir: str | Path) -> float:
    """How far a run got, in epochs (from its last checkpoint); 0 if none."""
    p = ck.find_checkpoint(run_dir, "last")
    if p is None:
        return 0.0
    m = ck.read_meta(p)
    return m["epoch"] + m["step_in_epoch"] / max(m.get("steps_per_epoch") or 1, 1)

