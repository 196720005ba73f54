"""The Trainer: one training run with the paper's protocol, resumable to the epoch and reproducible across a kill.

    trainer = Trainer.from_config(cfg, store)   # data, model, optimizer, schedule, threads, CPU helpers
    trainer.epoch()                             # one epoch (benchmarks: trainer.steps(rows, hook))
    result = trainer.fit(out)                   # every epoch into a run folder, then test
    trainer.close()                             # or `with Trainer.from_config(...) as trainer:`

One run folder holds `config.yaml` (the resolved config), `checkpoint.pt` (last complete epoch:
model, optimizer, scheduler, RNG state), `best.pt` (best validation epoch, when there is validation),
`history.jsonl` (one line per epoch) and `metrics.json` (test metrics of the weights kept). Fitting
the same config into the same folder resumes after the last complete epoch; since the shuffle order is
a pure function of (seed, epoch) and the global RNG state is restored, a killed-and-resumed run ends
with exactly the metrics of an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
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
from perr.models import ModelArgs, build_model
from perr.schedules import Schedule, ScheduleSpec, build_schedule
from perr.splits import stratified_split
from perr.store import FeatureSplit, FeatureStore, StoreHeader
from perr.train.batches import Batches, check_data, row_groups, text_source
from perr.train.cpu import CpuHelpers
from perr.train.evaluation import evaluate_split
from perr.train.loop import StepHook, make_optimizer, train_epoch
from perr.train.preload import preload_splits
from perr.train.threads import resolve_threads


@dataclass
class RunResult:
    out: Path
    metrics: dict[str, Any]  # test metrics per task name (empty when the store has no test split)
    best_epoch: int
    epochs_run: int


def model_args_for(cfg: TrainConfig, header: StoreHeader, task: Task) -> ModelArgs:
    """The model's arguments: the config's model settings (the fields the two share) over the store's
    modalities (minus `drop`), the task's classes and the texts a fine-tuned encoder reads."""
    dropped = set(cfg.dropped_modalities(header.modality_names))
    dims = {m.name: m.dim for m in header.modalities if m.name not in dropped}
    if not dims:
        raise ValueError("drop: every modality was dropped")
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
        joint_classes=joint_classes,
        text_modalities=_text_modalities(cfg, header, dims),
        **cfg.model_settings(),
    )


def _text_modalities(cfg: TrainConfig, header: StoreHeader, dims: dict[str, int]) -> list[str]:
    """The modalities a fine-tuned text encoder reads from raw step texts ([] for text_encoder=frozen)."""
    if cfg.text_encoder != "finetune":
        return []
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
    return text_modalities


@dataclass
class TrainData:
    """What one run reads: its train rows and, when there is validation, the split and rows it uses."""

    train: Batches
    val_split: FeatureSplit | None
    val_rows: np.ndarray | None


def prepare_data(fs: FeatureStore, cfg: TrainConfig, task: Task, modalities: list[str]) -> TrainData:
    """Check every split, then the train rows (grouped by `batch_by`) and the validation rows: the
    store's `val` split, else a stratified `holdout_fraction` of train, else none."""
    train_split = fs["train"]
    for name in ("train", "val", "test"):
        if name in fs:
            check_data(fs[name], modalities, task)
    targets = train_split.targets(task.name)
    # with a joint task the training batches carry both: y [B, 2], the task's classes in column 0
    trained = np.stack([targets, train_split.targets(cfg.joint_task)], axis=1) if cfg.joint_task else targets
    rows = np.arange(len(train_split))
    if "val" in fs:
        data = TrainData(Batches(train_split, modalities, trained, rows), fs["val"], None)
    elif cfg.holdout_fraction > 0:
        split = np.asarray(stratified_split(targets.tolist(), {"val": cfg.holdout_fraction}, cfg.seed))
        train_rows, val_rows = np.flatnonzero(split == "train"), np.flatnonzero(split == "val")
        data = TrainData(Batches(train_split, modalities, trained, train_rows), train_split, val_rows)
    else:
        data = TrainData(Batches(train_split, modalities, trained, rows), None, None)
    if cfg.batch_by:
        data.train.groups = row_groups(data.train.split, data.train.rows, cfg.batch_by)
    return data


class Trainer:
    """One model, its data and optimizer, set up as `perr train` runs them (see the module doc).

    Build it with :meth:`from_config`. It sets torch's intra-op thread count for the run (`threads`,
    perr.train.threads) and attaches the CPU helpers to the model (perr.train.cpu); :meth:`close` puts
    both back."""

    def __init__(
        self,
        cfg: TrainConfig,
        fs: FeatureStore,
        task: Task,
        device: torch.device,
        args: ModelArgs,
        model: torch.nn.Module,
        data: TrainData,
        threads: int,
        threads_before: int,
    ) -> None:
        self.cfg, self.fs, self.task, self.device = cfg, fs, task, device
        self.args, self.model, self.data = args, model, data
        self.threads, self._threads_before = threads, threads_before
        self.optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, cfg.text_lr)
        steps = math.ceil(len(data.train) / cfg.batch_size)
        self.schedule: Schedule = build_schedule(
            cfg.lr_schedule,
            self.optimizer,
            ScheduleSpec(cfg.epochs, steps, cfg.lr_step, cfg.lr_gamma, cfg.warmup),
        )
        self.helpers = CpuHelpers.choose(device, cfg.cpu_helpers).attach(model)
        self.next_epoch = 0
        header = fs["train"].header
        self.ckpt = Checkpoint(
            model_args=args,
            config=cfg,
            task=task,
            features=[s for s in header.modalities if s.name in args.modalities],
            T=header.T,
            dataset=header.dataset,
            synthetic=header.synthetic,
            joint_task=header.tasks[cfg.joint_task] if cfg.joint_task else None,
        )
        self.ckpt.best = {"value": -math.inf if self._maximise else math.inf, "epoch": -1}

    @classmethod
    def from_config(cls, cfg: TrainConfig, store: str | os.PathLike | FeatureStore) -> Trainer:
        """Data, model (seeded by `cfg.seed`), thread count, optimizer, schedule and CPU helpers for
        training `cfg` on `store`. glibc's malloc thresholds are fixed for the process
        (perr.machine.bound_heap_growth: RSS stays flat over epochs and evaluation passes)."""
        cfg.check()
        before = torch.get_num_threads()
        bound_heap_growth()
        fs = store if isinstance(store, FeatureStore) else FeatureStore(store)
        header = fs["train"].header
        task = fs["train"].task(cfg.task)
        device = resolve_device(cfg.device)
        args = model_args_for(cfg, header, task)
        data = prepare_data(fs, cfg, task, args.modalities)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % (2**32))
        model = build_model(args).to(device)
        threads = resolve_threads(cfg.threads, model, cfg.batch_size, header.T, device)
        torch.set_num_threads(threads)
        try:
            data.train.text = text_source(model)
            return cls(cfg, fs, task, device, args, model, data, threads, before)
        except BaseException:
            torch.set_num_threads(before)
            raise

    def close(self) -> None:
        """Detach the CPU helpers (stopping their threads) and put torch's thread count back."""
        self.helpers.close()
        torch.set_num_threads(self._threads_before)

    def __enter__(self) -> Trainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps and epochs -------------------------------------------------------------------------
    def epoch(self, hook: StepHook | None = None) -> dict[str, Any]:
        """Train epoch `next_epoch` (and step the schedule); its history record."""
        epoch, t0 = self.next_epoch, time.perf_counter()
        loss = train_epoch(
            self.model,
            self.optimizer,
            self.data.train,
            self.cfg,
            self.device,
            epoch,
            self.helpers,
            self.schedule,
            hook,
        )
        self.schedule.after_epoch()
        self.next_epoch += 1
        return {
            "epoch": epoch,
            "train_loss": loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t0,
            "threads": self.threads,
        }

    def batches(self, rows: np.ndarray, prefetch: int | None = None) -> Batches:
        """These rows of the train split, as the run's batches read them (for :meth:`steps`)."""
        train = self.data.train
        return Batches(train.split, train.modalities, train.targets, rows, prefetch=prefetch, text=train.text)

    def steps(self, batches: Batches, hook: StepHook | None = None) -> float:
        """Training steps over `batches` (shuffled as epoch 0), outside the run's epochs and schedule:
        for benchmarks that time blocks of real steps. The mean loss."""
        return train_epoch(
            self.model, self.optimizer, batches, self.cfg, self.device, 0, self.helpers, hook=hook
        )

    def use_helpers(self, helpers: CpuHelpers) -> None:
        """Train with these CPU helpers from now on (benchmarks compare set-ups); the current ones are
        detached, not closed."""
        self.helpers.detach()
        self.helpers = helpers.attach(self.model)

    # -- evaluation -------------------------------------------------------------------------------
    @property
    def _maximise(self) -> bool:
        return self.cfg.early_stop_metric != "loss"

    def validate(self) -> dict[str, float] | None:
        """Validation loss and F1 figures of the current weights (None without validation data)."""
        if self.data.val_split is None:
            return None
        vm, vloss, _ = evaluate_split(
            self.model,
            self.data.val_split,
            self.args.modalities,
            self.task,
            self.device,
            self.data.val_rows,
            self.cfg.bf16,
        )
        figures = {f"val_{k}": vm[self.task.name][k] for k in ("micro_f1", "macro_f1", "weighted_f1")}
        return {"val_loss": vloss, **figures}

    def test(self) -> dict[str, Any]:
        """Test metrics of the current weights per task (and "loss"); {} when the store has no test split."""
        if "test" not in self.fs:
            return {}
        test = self.fs["test"]
        metrics, loss, _ = evaluate_split(
            self.model,
            test,
            self.args.modalities,
            self.task,
            self.device,
            bf16=self.cfg.bf16,
            joint_task=test.header.tasks[self.cfg.joint_task] if self.cfg.joint_task else None,
        )
        metrics["loss"] = loss
        return metrics

    # -- a run folder -----------------------------------------------------------------------------
    def fit(
        self,
        out: str | os.PathLike,
        progress: Callable[[str, int, int], None] | None = None,
        stop_after_epoch: int | None = None,
    ) -> RunResult:
        """Train every epoch into run folder `out` (resuming it when it holds a checkpoint of the same
        config), keep the best validation weights (else the last), test them and write metrics.json.
        `stop_after_epoch` ends early after that epoch's checkpoint (a simulated kill, for tests)."""
        run = _RunFolder(Path(out))
        run.root.mkdir(parents=True, exist_ok=True)
        if run.checkpoint.exists():
            self._resume(run)
        save_config(self.cfg, run.root / "config.yaml")
        # the splits every epoch reads, into memory once (perr.train.preload); recorded with the first epoch
        preloaded = self._preload() if self.next_epoch < self.cfg.epochs else None
        epoch = self.next_epoch - 1
        while self.next_epoch < self.cfg.epochs:
            epoch = self.next_epoch
            record = self.epoch()
            if preloaded is not None:
                record["preload"], preloaded = preloaded, None
            self._validate_into(record, run)
            self._save_epoch(record, run)
            if progress is not None:
                progress(
                    f"epoch {epoch + 1}/{self.cfg.epochs} loss {record['train_loss']:.4f}",
                    epoch + 1,
                    self.cfg.epochs,
                )
            if stop_after_epoch is not None and epoch >= stop_after_epoch:
                return RunResult(run.root, {}, self.ckpt.best["epoch"], epoch + 1)
            if self._patience_spent(epoch):
                break
        return self._finish(run, max(epoch, 0))

    def _preload(self) -> dict[str, Any]:
        every_epoch = [
            self.data.train.split,
            *([self.data.val_split] if self.data.val_split is not None else []),
        ]
        return preload_splits(self.cfg.preload, every_epoch, self.data.train.dense_modalities)

    def _validate_into(self, record: dict[str, Any], run: _RunFolder) -> None:
        """Add the validation figures to the epoch's record; a new best epoch is saved as best.pt."""
        scores = self.validate()
        if scores is None:
            return
        record.update(scores)
        key = self.cfg.early_stop_metric
        value = scores["val_loss"] if key == "loss" else scores[f"val_{key}"]
        best = self.ckpt.best["value"]
        if (value > best) if self._maximise else (value < best):
            self.ckpt.best = {"value": value, "epoch": record["epoch"]}
            self._snapshot(record["epoch"], resume=False).save(run.best)

    def _patience_spent(self, epoch: int) -> bool:
        return (
            self.cfg.patience > 0
            and self.data.val_split is not None
            and epoch - self.ckpt.best["epoch"] >= self.cfg.patience
        )

    def _snapshot(self, epoch: int, resume: bool) -> Checkpoint:
        ckpt = self.ckpt
        ckpt.epoch, ckpt.model_state = epoch, self.model.state_dict()
        ckpt.resume = (
            ResumeState(
                self.optimizer.state_dict(), self.schedule.state_dict(), {"torch": torch.get_rng_state()}
            )
            if resume
            else None
        )
        return ckpt

    def _save_epoch(self, record: dict[str, Any], run: _RunFolder) -> None:
        self.ckpt.history.append(record)
        self._snapshot(record["epoch"], resume=True).save(run.checkpoint)
        with atomic_open(
            run.root / "history.jsonl"
        ) as fh:  # rewritten whole: a redone epoch never appears twice
            fh.writelines(json.dumps(r) + "\n" for r in self.ckpt.history)
        checkpoint_reached("train.epoch")

    def _resume(self, run: _RunFolder) -> None:
        """Restore the folder's last complete epoch into the record, the model and the optimizer."""
        saved = Checkpoint.load(run.checkpoint, self.device)
        if saved.config.to_dict() != self.cfg.to_dict() or saved.resume is None:
            raise ConfigMismatch(
                f"{run.root}: holds a run with a different config; use a new --out folder or the same settings to resume"
            )
        self.model.load_state_dict(saved.model_state)
        self.optimizer.load_state_dict(saved.resume.optimizer)
        self.schedule.load_state_dict(saved.resume.scheduler)
        torch.set_rng_state(saved.resume.rng["torch"])
        self.ckpt.history, self.ckpt.best = list(saved.history), dict(saved.best)
        self.next_epoch = saved.epoch + 1

    def _finish(self, run: _RunFolder, last_epoch: int) -> RunResult:
        """Keep the best validation weights (MMSA idiom), else the last ones; then test and write metrics.json."""
        if run.best.exists() and self.data.val_split is not None:
            self.model.load_state_dict(Checkpoint.load(run.best, self.device).model_state)
        else:
            self._snapshot(last_epoch, False).save(run.best)
        metrics = self.test()
        ckpt, cfg = self.ckpt, self.cfg
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
        write_json(run.root / "metrics.json", summary)
        return RunResult(run.root, metrics, ckpt.best["epoch"], len(ckpt.history))


@dataclass(frozen=True)
class _RunFolder:
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.pt"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"


def train(
    store: str | os.PathLike | FeatureStore,
    cfg: TrainConfig,
    out: str | os.PathLike,
    progress: Callable[[str, int, int], None] | None = None,
    stop_after_epoch: int | None = None,
) -> RunResult:
    """Train one model on `store` into run folder `out`: `Trainer.from_config(cfg, store).fit(out)`."""
    with Trainer.from_config(cfg, store) as trainer:
        return trainer.fit(out, progress, stop_after_epoch)
