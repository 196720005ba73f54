"""Training with the paper's protocol, resumable to the epoch and reproducible across a kill.

One run folder holds `config.yaml` (the resolved config), `checkpoint.pt` (last complete epoch:
model, optimizer, scheduler, RNG state), `best.pt` (best validation epoch, when there is validation),
`history.jsonl` (one line per epoch) and `metrics.json` (test metrics of the weights kept). Re-running
the same command on the same folder resumes after the last complete epoch; since the shuffle order is
a pure function of (seed, epoch) and the global RNG state is restored, a killed-and-resumed run ends
with exactly the metrics of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perr.checkpoint import Checkpoint, ResumeState
from perr.config import TrainConfig, save_config
from perr.device import resolve_device
from perr.errors import ConfigMismatch
from perr.faults import checkpoint_reached
from perr.io import atomic_open, write_json
from perr.labels import Task
from perr.machine import bound_heap_growth
from perr.models import ModelArgs, TextFinetuneModel, build_model
from perr.models.branches import BranchPool, parallel_branches
from perr.models.dropout import MaskPlan
from perr.schedules import Schedule, ScheduleSpec, build_schedule
from perr.splits import stratified_split
from perr.store import FeatureSplit, FeatureStore, StoreHeader
from perr.train.batches import Batches, LoaderStats, check_data, epoch_order, row_groups, text_source
from perr.train.evaluation import evaluate_split
from perr.train.preload import preload_splits
from perr.train.threads import mask_helper, resolve_threads, runs_branches_in_parallel


@dataclass
class RunResult:
    out: Path
    metrics: dict[str, Any]  # test metrics per task name (empty when the store has no test split)
    best_epoch: int
    epochs_run: int


def model_args_for(cfg: TrainConfig, header: StoreHeader, task: Task) -> ModelArgs:
    """The model's arguments: the config's sizes over the store's modalities (minus `drop`)."""
    dropped = set(cfg.dropped_modalities(header.modality_names))
    dims = {m.name: m.dim for m in header.modalities if m.name not in dropped}
    if not dims:
        raise ValueError("drop: every modality was dropped")
    text_modalities: list[str] = []
    if cfg.text_encoder == "finetune":
        unknown = sorted(set(cfg.text_finetune) - set(header.step_texts))
        if unknown:
            raise ValueError(
                f"text_finetune: {unknown} have no raw step texts in this store (has: {header.step_texts or 'none'})"
            )
        wanted = cfg.text_finetune or header.step_texts
        text_modalities = [m for m in header.step_texts if m in dims and m in wanted]
        if not text_modalities:
            raise ValueError(
                "text_encoder=finetune needs raw step texts in the store, and this one has none"
                + (f" among the modalities kept ({', '.join(dims)})" if header.step_texts else "")
                + ": dialogue stores keep them (perr data dialogue-store, adapter version ≥ 2); video and "
                "synthetic stores hold only text vectors, so train them with text_encoder=frozen"
            )
    joint_classes = 0
    if cfg.joint_task:
        if cfg.joint_task not in header.tasks:
            raise ValueError(
                f"joint_task: this store has no task {cfg.joint_task!r}; it has {', '.join(header.tasks)}"
            )
        joint_classes = header.tasks[cfg.joint_task].n_classes
    return ModelArgs(
        name=cfg.model,
        input_dims=dims,
        n_classes=task.n_classes,
        d_model=cfg.d_model,
        stage2_hidden=cfg.stage2_hidden,
        heads=cfg.heads,
        ff_dim=cfg.ff_dim,
        dropout=cfg.dropout,
        aux_weight=cfg.aux_weight,
        label_smoothing=cfg.label_smoothing,
        joint_classes=joint_classes,
        joint_weight=cfg.joint_weight,
        modality_dropout=cfg.modality_dropout,
        text_modalities=text_modalities,
        text_model=cfg.text_model,
        text_max_tokens=cfg.text_max_tokens,
        text_pooling=cfg.text_pooling,
    )


def make_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float = 0.0, text_lr: float | None = None
) -> torch.optim.Adam:
    """The paper's Adam, with torch's fused kernel: one pass over all parameters instead of a Python loop
    per tensor (4.3 ms vs 12.8 ms per step for smta-transformer at paper size on 2 CPU cores). Same
    update rule; results differ from the unfused loop only by float rounding. A model with a fine-tuned
    text encoder (TextFinetuneModel) trains it at `text_lr` (default: `lr`)."""
    params: Any = model.parameters()
    if isinstance(model, TextFinetuneModel):
        params = model.param_groups(lr, lr if text_lr is None else text_lr)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)


@dataclass
class _Data:
    """What one run reads: its train rows and, when there is validation, the split and rows it uses."""

    train: Batches
    val_split: FeatureSplit | None
    val_rows: np.ndarray | None


def _prepare_data(fs: FeatureStore, cfg: TrainConfig, task: Task, modalities: list[str]) -> _Data:
    data = _split_rows(fs, cfg, task, modalities)
    if cfg.batch_by:
        data.train.groups = row_groups(data.train.split, data.train.rows, cfg.batch_by)
    return data


def _split_rows(fs: FeatureStore, cfg: TrainConfig, task: Task, modalities: list[str]) -> _Data:
    train_split = fs["train"]
    for name in ("train", "val", "test"):
        if name in fs:
            check_data(fs[name], modalities, task)
    targets = train_split.targets(task.name)
    # with a joint task the training batches carry both: y [B, 2], the task's classes in column 0
    trained = np.stack([targets, train_split.targets(cfg.joint_task)], axis=1) if cfg.joint_task else targets
    rows = np.arange(len(train_split))
    if "val" in fs:
        return _Data(Batches(train_split, modalities, trained, rows), fs["val"], None)
    if cfg.holdout_fraction > 0:
        split = np.asarray(stratified_split(targets.tolist(), {"val": cfg.holdout_fraction}, cfg.seed))
        train_rows, val_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
        return _Data(Batches(train_split, modalities, trained, train_rows), train_split, val_rows)
    return _Data(Batches(train_split, modalities, trained, rows), None, None)


@dataclass
class EpochProfile:
    """Where one epoch's time went (seconds, summed over steps); filled when passed to `train_epoch`.
    Forward/backward/optimizer are timed in the step thread (synchronised on CUDA, so the figures are
    the kernels' and not their launches); gather runs in the loader thread beside them."""

    steps: int = 0
    wall_s: float = 0.0
    forward_s: float = 0.0
    backward_s: float = 0.0
    optimizer_s: float = 0.0
    loader: LoaderStats = field(default_factory=LoaderStats)

    def to_json(self) -> dict[str, Any]:
        per = 1e3 / max(self.steps, 1)
        parts = {
            "gather": self.loader.gather_s,
            "h2d": self.loader.h2d_s,
            "wait": self.loader.wait_s,
            "forward": self.forward_s,
            "backward": self.backward_s,
            "optimizer": self.optimizer_s,
        }
        return {
            "steps": self.steps,
            "wall_s": round(self.wall_s, 3),
            "steps_per_s": round(self.steps / self.wall_s, 3) if self.wall_s else None,
            "ms_per_step": {k: round(v * per, 2) for k, v in parts.items()}
            | {"total": round(self.wall_s * per, 2)},
            "note": "gather runs in the loader thread, overlapped with the step; wait is the step thread "
            "blocked on the loader; h2d is the host-to-device copy issued by the step thread",
        }


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Batches,
    cfg: TrainConfig,
    device: torch.device,
    epoch: int,
    profile: EpochProfile | None = None,
    masks: MaskPlan | None = None,
    branches: BranchPool | None = None,
    schedule: Schedule | None = None,
) -> float:
    """One pass over the training rows in the epoch's shuffle order; the mean training loss.

    Batches are prepared ahead by a background thread (perr.train.batches); with `masks` (CPU), the
    dropout masks are drawn one step ahead by another (perr.models.dropout), exactly as the step would
    draw them; with `branches` (CPU, a core spare), the model's independent branches run on two threads
    (perr.models.branches). The loss is summed on the device and read once at the end, so no step waits
    on the device just to log a number."""
    model.train()
    total = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
    count = 0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    stats = profile.loader if profile is not None else None
    start = time.perf_counter()
    order = epoch_order(len(data), cfg.seed, epoch, data.groups)
    sizes = [min(cfg.batch_size, len(data) - i) for i in range(0, len(data), cfg.batch_size)]
    with masks.epoch(sizes) if masks is not None else contextlib.nullcontext(), parallel_branches(branches):
        for _, x, mask, y in data.iterate(cfg.batch_size, device, order, stats=stats):
            optimizer.zero_grad(set_to_none=True)
            if profile is not None:
                sync()
                t0 = time.perf_counter()
            with masks.step(len(y)) if masks is not None else contextlib.nullcontext():
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                    output = model(x, mask)
                    loss = model.loss(output, y, mask)
                if profile is not None:
                    sync()
                    t1 = time.perf_counter()
                loss.float().backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if profile is not None:
                sync()
                t2 = time.perf_counter()
            optimizer.step()
            if schedule is not None:
                schedule.after_batch()
            if profile is not None:
                sync()
                t3 = time.perf_counter()
                profile.forward_s += t1 - t0
                profile.backward_s += t2 - t1
                profile.optimizer_s += t3 - t2
                profile.steps += 1
            total.add_(loss.detach().to(total.dtype), alpha=len(y))
            count += len(y)
    if profile is not None:
        profile.wall_s += time.perf_counter() - start
    return float(total) / max(count, 1)


def train(
    store: str | os.PathLike | FeatureStore,
    cfg: TrainConfig,
    out: str | os.PathLike,
    progress: Callable[[str, int, int], None] | None = None,
    stop_after_epoch: int | None = None,
) -> RunResult:
    """Train one model on `store` into run folder `out`, resuming if it holds a checkpoint of the same config.

    `stop_after_epoch` ends the process-level loop early (used to simulate a kill in tests). Torch's
    intra-op thread count is set for the run (`cfg.threads`, 0 = auto: perr.train.threads) and put back;
    glibc's malloc thresholds are fixed for the process (perr.machine.bound_heap_growth).
    """
    before = torch.get_num_threads()
    bound_heap_growth()  # glibc: keep RSS flat over epochs and evaluation passes (perr.machine)
    branches = BranchPool()  # its thread starts only if _train uses it
    try:
        return _train(store, cfg, out, progress, stop_after_epoch, branches)
    finally:
        branches.close()
        torch.set_num_threads(before)


def _train(
    store: str | os.PathLike | FeatureStore,
    cfg: TrainConfig,
    out: str | os.PathLike,
    progress: Callable[[str, int, int], None] | None,
    stop_after_epoch: int | None,
    branches: BranchPool,
) -> RunResult:
    cfg.validate()
    fs = store if isinstance(store, FeatureStore) else FeatureStore(store)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    header = fs["train"].header
    task = fs["train"].task(cfg.task)
    device = resolve_device(cfg.device)
    args = model_args_for(cfg, header, task)
    modalities = args.modalities
    data = _prepare_data(fs, cfg, task, modalities)

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % (2**32))
    model = build_model(args).to(device)
    threads = resolve_threads(cfg.threads, model, cfg.batch_size, header.T, device)
    torch.set_num_threads(threads)
    data.train.text = text_source(model)
    optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.text_lr)
    scheduler = build_schedule(
        cfg.lr_schedule,
        optimizer,
        ScheduleSpec(
            cfg.epochs, math.ceil(len(data.train) / cfg.batch_size), cfg.lr_step, cfg.lr_gamma, cfg.warmup
        ),
    )
    signature = [s for s in header.modalities if s.name in modalities]
    ckpt = Checkpoint(
        model_args=args,
        config=cfg,
        task=task,
        features=signature,
        T=header.T,
        dataset=header.dataset,
        synthetic=header.synthetic,
        joint_task=header.tasks[cfg.joint_task] if cfg.joint_task else None,
    )
    ckpt_path, best_path = out / "checkpoint.pt", out / "best.pt"
    maximise = cfg.early_stop_metric != "loss"
    ckpt.best = {"value": -math.inf if maximise else math.inf, "epoch": -1}
    start_epoch = 0
    if ckpt_path.exists():
        start_epoch = _resume(ckpt_path, ckpt, model, optimizer, scheduler, device, out)
    save_config(cfg, out / "config.yaml")

    def snapshot(epoch: int, resume: bool) -> Checkpoint:
        ckpt.epoch, ckpt.model_state = epoch, model.state_dict()
        ckpt.resume = (
            ResumeState(optimizer.state_dict(), scheduler.state_dict(), {"torch": torch.get_rng_state()})
            if resume
            else None
        )
        return ckpt

    # dropout masks drawn a step ahead on CPU, by a helper on a spare core or at idle priority (threads.py)
    helper = mask_helper(device)
    masks = MaskPlan(background=helper == "background") if helper is not None else None
    # the stage-2 LSTMs on two threads, splitting torch's threads or beside them on a spare core (threads.py)
    pool = branches if runs_branches_in_parallel(device) else None
    # the splits every epoch reads, into memory once (perr.train.preload); recorded with the first epoch
    read_every_epoch = [data.train.split, *([data.val_split] if data.val_split is not None else [])]
    preloaded: dict[str, Any] | None = None
    if start_epoch < cfg.epochs:
        preloaded = preload_splits(cfg.preload, read_every_epoch, data.train.dense_modalities)
    epoch = start_epoch - 1
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        train_loss = train_epoch(
            model, optimizer, data.train, cfg, device, epoch, masks=masks, branches=pool, schedule=scheduler
        )
        scheduler.after_epoch()
        record: dict[str, Any] = {
            "epoch": epoch,
            "train_loss": train_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
            "threads": threads,
        }
        if preloaded is not None:
            record["preload"], preloaded = preloaded, None
        if data.val_split is not None:
            vm, vloss, _ = evaluate_split(
                model, data.val_split, modalities, task, device, data.val_rows, cfg.bf16, pool
            )
            record.update(
                val_loss=vloss,
                **{f"val_{k}": vm[task.name][k] for k in ("micro_f1", "macro_f1", "weighted_f1")},
            )
            value = vloss if cfg.early_stop_metric == "loss" else vm[task.name][cfg.early_stop_metric]
            if (value > ckpt.best["value"]) if maximise else (value < ckpt.best["value"]):
                ckpt.best = {"value": value, "epoch": epoch}
                snapshot(epoch, resume=False).save(best_path)
        ckpt.history.append(record)
        snapshot(epoch, resume=True).save(ckpt_path)
        with atomic_open(out / "history.jsonl") as fh:  # rewritten whole: a redone epoch never appears twice
            fh.writelines(json.dumps(r) + "\n" for r in ckpt.history)
        checkpoint_reached("train.epoch")
        if progress is not None:
            progress(f"epoch {epoch + 1}/{cfg.epochs} loss {record['train_loss']:.4f}", epoch + 1, cfg.epochs)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            return RunResult(out, {}, ckpt.best["epoch"], epoch + 1)
        if cfg.patience > 0 and data.val_split is not None and epoch - ckpt.best["epoch"] >= cfg.patience:
            break
    return _finish(
        fs,
        cfg,
        ckpt,
        model,
        best_path,
        data.val_split is not None,
        max(epoch, 0),
        device,
        out,
        snapshot,
        pool,
    )


def _resume(
    path: Path,
    ckpt: Checkpoint,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
    out: Path,
) -> int:
    """Restore a run folder's last complete epoch into `ckpt`, the model and the optimizer; the next epoch."""
    saved = Checkpoint.load(path, device)
    if saved.config.to_dict() != ckpt.config.to_dict() or saved.resume is None:
        raise ConfigMismatch(
            f"{out}: holds a run with a different config; use a new --out folder or the same settings to resume"
        )
    model.load_state_dict(saved.model_state)
    optimizer.load_state_dict(saved.resume.optimizer)
    scheduler.load_state_dict(saved.resume.scheduler)
    torch.set_rng_state(saved.resume.rng["torch"])
    ckpt.history, ckpt.best = list(saved.history), dict(saved.best)
    return saved.epoch + 1


def _finish(
    fs: FeatureStore,
    cfg: TrainConfig,
    ckpt: Checkpoint,
    model: torch.nn.Module,
    best_path: Path,
    validated: bool,
    last_epoch: int,
    device: torch.device,
    out: Path,
    snapshot: Callable[[int, bool], Checkpoint],
    branches: BranchPool | None = None,
) -> RunResult:
    """Keep the best validation weights (MMSA idiom), else the last ones; then test and write metrics.json."""
    if best_path.exists() and validated:
        model.load_state_dict(Checkpoint.load(best_path, device).model_state)
    else:
        snapshot(last_epoch, False).save(best_path)
    metrics: dict[str, Any] = {}
    if "test" in fs:
        metrics, test_loss, _ = evaluate_split(
            model,
            fs["test"],
            ckpt.modalities,
            ckpt.task,
            device,
            bf16=cfg.bf16,
            branches=branches,
            joint_task=fs["test"].header.tasks[cfg.joint_task] if cfg.joint_task else None,
        )
        metrics["loss"] = test_loss
    summary = {
        "model": cfg.model,
        "task": cfg.task,
        "seed": cfg.seed,
        "dataset": ckpt.dataset,
        "synthetic": ckpt.synthetic,
        "best_epoch": ckpt.best["epoch"],
        "epochs_run": len(ckpt.history),
        "test": metrics,
    }
    write_json(out / "metrics.json", summary)
    return RunResult(out, metrics, ckpt.best["epoch"], len(ckpt.history))
