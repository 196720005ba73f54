"""Trainer end to end on a tiny store: train → checkpoint → kill → resume → evaluate, and refusal of bad data."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from perr.checkpoint import Checkpoint
from perr.config import load_config
from perr.store import FeatureStore, ModalitySpec, StoreError, write_split
from perr.train import evaluate, train
from toydata import TINY, make_toy_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_toy_store(tmp_path_factory.mktemp("toy"))


def _cfg(**kw):
    cfg = load_config(None, [*TINY, "epochs=4", "lr_step=2", "model=smta-transformer"])
    return dataclasses.replace(cfg, **kw)


def test_killed_and_resumed_run_matches_uninterrupted(store, tmp_path):
    full = train(store, _cfg(), tmp_path / "full")
    # a kill right after epoch 2's checkpoint leaves exactly this on disk (writes are atomic)
    part = train(store, _cfg(), tmp_path / "resumed", stop_after_epoch=1)
    assert part.epochs_run == 2 and not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = train(store, _cfg(), tmp_path / "resumed")
    assert resumed.metrics["5"]["micro_f1"] == full.metrics["5"]["micro_f1"]
    assert resumed.metrics["5"]["confusion_matrix"] == full.metrics["5"]["confusion_matrix"]
    a = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    for k in a["model_state"]:
        assert torch.equal(a["model_state"][k], b["model_state"][k]), k
    assert len((tmp_path / "resumed" / "history.jsonl").read_text().splitlines()) == 4


def test_checkpoint_contents_and_weights_only_load(store, tmp_path):
    train(store, _cfg(epochs=2), tmp_path / "r")
    ckpt = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    for key in ("model_args", "config", "optimizer", "scheduler", "rng", "features", "task", "epoch"):
        assert key in ckpt
    assert ckpt["scheduler"]["step_size"] == 2 and ckpt["config"]["model"] == "smta-transformer"
    assert [f["name"] for f in ckpt["features"]] == ["person_a", "person_b", "background", "audio", "text"]
    best = Checkpoint.load(tmp_path / "r" / "best.pt")
    assert best.model_args.n_classes == 5 and best.resume is None and best.config.epochs == 2
    assert [s.name for s in best.features] == ["person_a", "person_b", "background", "audio", "text"]
    resumable = Checkpoint.load(tmp_path / "r" / "checkpoint.pt")
    assert resumable.epoch == 1 and resumable.resume is not None and len(resumable.history) == 2


def test_resume_with_other_config_is_refused(store, tmp_path):
    train(store, _cfg(epochs=1), tmp_path / "r")
    with pytest.raises(ValueError, match="different config"):
        train(store, _cfg(epochs=1, lr=1e-3), tmp_path / "r")


def test_learns_the_signal_and_early_stops_on_val(store, tmp_path):
    res = train(store, _cfg(epochs=6, patience=2, early_stop_metric="macro_f1", lr_step=15), tmp_path / "r")
    assert res.metrics["5"]["micro_f1"] > 0.5  # chance is 0.2
    assert "3" in res.metrics and res.metrics["3"]["derived_from"] == "5"
    assert 0 <= res.best_epoch < res.epochs_run


def test_drop_removes_modalities_from_the_model(store, tmp_path):
    train(store, _cfg(epochs=1, drop=["person"]), tmp_path / "r")
    assert Checkpoint.load(tmp_path / "r" / "best.pt").modalities == ["background", "audio", "text"]


def test_training_refuses_nan_features_naming_row_and_modality(store, tmp_path):
    bad = tmp_path / "bad"
    fs = FeatureStore(store)
    for split in ("train", "test"):
        sp = fs[split]
        feats = {m: np.array(sp.features(m), dtype=np.float32) for m in sp.modalities}
        masks = {m: np.array(sp.mask(m)) for m in sp.modalities}
        if split == "train":
            masks["audio"][3, :] = 1
            feats["audio"][3, 2, 1] = np.nan
        write_split(
            bad / split,
            sp.header,
            feats,
            masks,
            [{k: v for k, v in r.items() if k != "row"} for r in sp.index],
        )
    with pytest.raises(StoreError, match=r"row 3 \(clip toy-train-3\): audio: NaN/inf at 1 step"):
        train(bad, _cfg(epochs=1), tmp_path / "r")
    out = subprocess.run(
        [sys.executable, "-m", "perr", "data", "validate", str(bad)], capture_output=True, text=True
    )
    assert out.returncode == 1 and "row 3 (clip toy-train-3): audio: NaN/inf" in out.stderr


def test_evaluate_refuses_store_from_other_extractors(store, tmp_path):
    train(store, _cfg(epochs=1), tmp_path / "r")
    other = tmp_path / "other"
    fs = FeatureStore(store)
    sp = fs["test"]
    header = dataclasses.replace(
        sp.header,
        modalities=[
            ModalitySpec(m.name, m.dim, "toy" if m.name != "text" else "minilm", "1")
            for m in sp.header.modalities
        ],
    )
    write_split(
        other / "test",
        header,
        {m: np.array(sp.features(m)) for m in sp.modalities},
        {m: np.array(sp.mask(m)) for m in sp.modalities},
        [{k: v for k, v in r.items() if k != "row"} for r in sp.index],
    )
    with pytest.raises(
        StoreError, match="modality 'text': extractor is 'minilm', the checkpoint was trained with 'toy'"
    ):
        evaluate(tmp_path / "r" / "best.pt", other)


def _batches(store, split="train", prefetch=3):
    from perr.train.batches import Batches

    sp = FeatureStore(store)[split]
    return Batches(sp, sp.modalities, sp.targets("5"), np.arange(len(sp)), prefetch=prefetch)


def test_prefetched_batches_are_the_stored_rows_in_the_epoch_order(store):
    """The loader thread hands over exactly what the store holds (float16 → float32, masks as bool), in
    the shuffle's order, the same as reading in the step's own thread."""
    from perr.train.batches import LoaderStats, epoch_order

    ahead, inline = _batches(store), _batches(store, prefetch=0)
    order = epoch_order(len(ahead), 3, 1)
    stats = LoaderStats()
    got = list(ahead.iterate(7, torch.device("cpu"), order, stats=stats))
    ref = list(inline.iterate(7, torch.device("cpu"), order))
    assert len(got) == len(ref) == -(-len(ahead) // 7) and stats.batches == len(got) and stats.gather_s > 0
    sp = ahead.split
    for (rows, x, mask, y), (rows2, x2, mask2, y2), i in zip(got, ref, range(0, len(order), 7), strict=True):
        assert np.array_equal(rows, np.sort(order[i : i + 7])) and np.array_equal(rows, rows2)
        assert torch.equal(y, y2) and np.array_equal(y.numpy(), sp.targets("5")[rows])
        for m in sp.modalities:
            assert x[m].dtype == torch.float32 and mask[m].dtype == torch.bool
            assert np.array_equal(x[m].numpy(), np.asarray(sp.features(m)[rows], dtype=np.float32))
            assert np.array_equal(mask[m].numpy(), np.asarray(sp.mask(m)[rows]) != 0)
            assert torch.equal(x[m], x2[m]) and torch.equal(mask[m], mask2[m])


def test_grouped_epoch_order_keeps_each_group_together_and_shuffles_the_groups():
    """batch_by: a permutation of the rows where each group's rows follow one another in row order, the
    group order a pure function of (seed, epoch) that differs between epochs."""
    from perr.train.batches import epoch_order

    groups = np.array(["d3", "d1", "d1", "d2", "d3", "d2", "d2", "d1", "d4", "d3"] * 3)
    orders = [epoch_order(len(groups), 0, e, groups) for e in range(6)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(len(groups)))
        seq = groups[order]
        runs = [g for k, g in enumerate(seq) if k == 0 or seq[k - 1] != g]  # one run per group
        assert sorted(runs) == ["d1", "d2", "d3", "d4"]
        for g in runs:
            assert order[seq == g].tolist() == np.flatnonzero(groups == g).tolist()
    assert np.array_equal(orders[2], epoch_order(len(groups), 0, 2, groups))  # a resumed epoch is the same
    assert len({tuple(groups[o][np.r_[True, groups[o][1:] != groups[o][:-1]]]) for o in orders}) > 1
    with pytest.raises(ValueError, match="3 group codes for 4 rows"):
        epoch_order(4, 0, 0, groups[:3])


def test_batch_by_names_a_missing_index_column(store, tmp_path):
    with pytest.raises(
        StoreError,
        match="batch_by: index row 0 has no column 'episode'; its columns are row, clip_id, label, drama",
    ):
        train(store, load_config(None, [*TINY, "epochs=1", "batch_by=episode"]), tmp_path / "r")


def test_loader_thread_stops_when_the_loop_stops_early_and_passes_errors_on(store):
    import threading

    data = _batches(store)
    for i, _ in enumerate(data.iterate(4, torch.device("cpu"))):
        if i == 2:
            break
    assert not [t for t in threading.enumerate() if t.name == "perr-batches"]
    broken = _batches(store)
    broken.targets = broken.targets[:10]  # rows past 10 have no target: the loader fails part-way
    with pytest.raises(IndexError):
        list(broken.iterate(4, torch.device("cpu")))
    assert not [t for t in threading.enumerate() if t.name == "perr-batches"]


def test_epoch_is_the_same_with_and_without_the_loader_thread(store):
    """Same seed, same thread count: the prefetching loop trains exactly the weights of the inline one."""
    from perr.models import build_model
    from perr.train import make_optimizer
    from perr.train.loop import EpochProfile, train_epoch
    from perr.train.trainer import model_args_for

    cfg = _cfg()
    header = FeatureStore(store)["train"].header
    weights, losses = [], []
    for prefetch in (3, 0):
        torch.manual_seed(0)
        model = build_model(model_args_for(cfg, header, FeatureStore(store)["train"].task("5")))
        opt = make_optimizer(model, cfg.lr)
        profile = EpochProfile()
        losses.append(
            train_epoch(
                model, opt, _batches(store, prefetch=prefetch), cfg, torch.device("cpu"), 0, hook=profile
            )
        )
        weights.append(model.state_dict())
        steps = profile.to_json()
        assert steps["steps"] == -(-100 // cfg.batch_size) and steps["ms_per_step"]["forward"] > 0
    assert losses[0] == losses[1]
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_auto_threads_follow_model_size_and_cores(store, tmp_path):
    from perr.machine import physical_cores
    from perr.models import ModelArgs, build_model
    from perr.train.threads import SMALL_WORK, SPLIT_WORK, auto_threads, resolve_threads, step_work

    dims = {"person_a": 249, "person_b": 249, "background": 1280, "audio": 131, "text": 512}
    tiny = build_model(ModelArgs("smta-transformer", {k: 8 for k in dims}, 5, 16, 16, 2, 32))
    mid = build_model(ModelArgs("smta-transformer", dims, 5, 128, 128, 4, 256))
    paper = build_model(ModelArgs("smta-transformer", dims, 5, 256, 256, 4, 512))
    assert (
        step_work(tiny, 16, 32) < SMALL_WORK < step_work(mid, 16, 32) < SPLIT_WORK < step_work(paper, 16, 32)
    )
    assert auto_threads(tiny, 16, 32, cores=8) == 1
    # a mid-sized smta-transformer's stage-2 LSTMs run on two threads, each with half the cores
    assert auto_threads(mid, 16, 32, cores=8) == 4
    assert auto_threads(mid, 16, 32, cores=2) == 1
    assert auto_threads(mid, 16, 32) == max(1, physical_cores() // 2)
    # the paper's takes every core and splits them only while its branches run (BranchPool.map)
    assert auto_threads(paper, 16, 32, cores=8) == 8
    assert auto_threads(paper, 16, 32, cores=2) == 2
    no_branches = build_model(ModelArgs("pair-cross", dims, 5, 256, 256, 4, 512))
    assert step_work(no_branches, 16, 32) > SMALL_WORK
    assert auto_threads(no_branches, 16, 32, cores=8) == 8
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))
    from perr.train.cpu.helpers import runs_branches_in_parallel
    from perr.train.threads import spare_core

    before = torch.get_num_threads()
    try:  # helper threads only beside a pool that leaves a core free, and always beside a GPU
        torch.set_num_threads(physical_cores())
        assert not spare_core(torch.device("cpu")) and spare_core(torch.device("cuda"))
        torch.set_num_threads(1)
        assert spare_core(torch.device("cpu")) == (physical_cores() > 1)
        # branches on two threads: beside one intra-op thread on a spare core, or splitting two or more
        assert runs_branches_in_parallel(torch.device("cpu")) == (physical_cores() > 1)
        torch.set_num_threads(2)
        assert runs_branches_in_parallel(torch.device("cpu"))
        assert not runs_branches_in_parallel(torch.device("cuda"))
    finally:
        torch.set_num_threads(before)
    assert resolve_threads(3, tiny, 16, 32, torch.device("cpu")) == 3
    res = train(store, _cfg(epochs=1), tmp_path / "r")  # threads=0: auto, recorded per epoch
    history = [json.loads(line) for line in (res.out / "history.jsonl").read_text().splitlines()]
    assert history[0]["threads"] == 1


def _two_epochs(store, masks, model_cls=None, branches=None, cfg=None):
    from perr.models import build_model
    from perr.train import make_optimizer
    from perr.train.cpu import CpuHelpers
    from perr.train.loop import train_epoch
    from perr.train.trainer import model_args_for

    cfg = cfg or _cfg()
    sp = FeatureStore(store)["train"]
    torch.manual_seed(0)
    model = build_model(model_args_for(cfg, sp.header, sp.task("5")))
    if model_cls is not None:
        model.__class__ = model_cls
    opt = make_optimizer(model, cfg.lr)
    helpers = CpuHelpers(masks, branches).attach(model)
    try:
        losses = [
            train_epoch(model, opt, _batches(store), cfg, torch.device("cpu"), e, helpers) for e in (0, 1)
        ]
    finally:
        helpers.detach()
    return losses, model.state_dict(), torch.get_rng_state()


def test_dropout_masks_drawn_ahead_change_nothing(store):
    """Masks drawn a step ahead by a helper thread are F.dropout's own draws: same losses, weights and
    generator state as drawing in the step; 100 rows in batches of 16 end with a batch of 4, which
    draws in place (a batch size seen for the first time)."""
    from perr.train.cpu.masks import MaskPlan

    plan = MaskPlan()
    ahead = _two_epochs(store, plan)
    inline = _two_epochs(store, None)
    assert plan.enabled and set(plan.tapes) == {16, 4}
    # epoch 1: 6 steps of 16 (the first learns the tape) and one of 4 (learns its own); epoch 2: all 7 ahead
    assert plan.steps_ahead == (6 - 1) + 7
    assert ahead[0] == inline[0] and torch.equal(ahead[2], inline[2])
    for k in ahead[1]:
        assert torch.equal(ahead[1][k], inline[1][k]), k


def test_stage2_lstms_on_two_threads_change_nothing(store):
    """The stage-2 LSTMs run on two threads (forward and backward, beside the masks' helper) give the
    losses, weights and generator state of the serial model, bit for bit, over two epochs."""
    from perr.train.cpu.branches import BranchPool
    from perr.train.cpu.masks import MaskPlan

    pool = BranchPool()
    try:
        parallel = _two_epochs(store, MaskPlan(), branches=pool)
        assert pool.maps > 0  # the pool really ran branches
    finally:
        pool.close()
    serial = _two_epochs(store, MaskPlan())
    assert parallel[0] == serial[0] and torch.equal(parallel[2], serial[2])
    for k in serial[1]:
        assert torch.equal(parallel[1][k], serial[1][k]), k


def test_background_mask_helper_changes_nothing_and_retires_when_starved(store, monkeypatch):
    """Beside a thread pool that fills every core the helper runs at idle priority. When it keeps a
    step waiting (here: its third tape stalls until the step gives up on it, as if other processes had the cores), the step
    takes what it already drew, retires it for the rest of the epoch and draws in place: losses,
    weights and the generator's state stay those of drawing in the step."""
    import threading
    import time

    from perr.train.cpu import masks as dropout_mod
    from perr.train.cpu.masks import Draw, MaskPlan

    monkeypatch.setattr(dropout_mod, "STARVED_S", 0.5)
    # the scheduler policy itself is tested below; here the helper keeps its priority, so only the
    # deliberate stall can starve it (on a CI machine busy with other tests an idle one might be too)
    monkeypatch.setattr(dropout_mod, "lower_this_thread", lambda: None)
    made = {"helper": 0}
    make = Draw.make

    def stalling_make(self, generator=None):
        if threading.current_thread().name == "perr-dropout-masks":
            made["helper"] += 1
            if made["helper"] == 2 * len(plan.tapes[16]) + 1:  # the first mask of its third tape
                deadline = time.monotonic() + 60  # stalls until the step gives up on it (a loaded
                while plan.starved == 0 and time.monotonic() < deadline:  # machine's steps are slow)
                    time.sleep(0.01)
        return make(self, generator)

    plan = MaskPlan(background=True)
    monkeypatch.setattr(Draw, "make", stalling_make)
    ahead = _two_epochs(store, plan)
    monkeypatch.setattr(Draw, "make", make)
    inline = _two_epochs(store, None)
    assert plan.starved == 1 and plan.retired == 1  # epoch 1 only: the stall happens once
    # epoch 1: step 1 learns the tape, steps 2-4 come from the helper (the stalled one included), then
    # in place; epoch 2: all 7 ahead
    assert plan.steps_ahead == 3 + 7
    assert ahead[0] == inline[0] and torch.equal(ahead[2], inline[2])
    for k in ahead[1]:
        assert torch.equal(ahead[1][k], inline[1][k]), k


def test_mask_helper_runs_where_the_cores_allow():
    """A spare core gets an ordinary helper; a pool on every core gets an idle-priority one on Linux;
    a GPU draws its own masks."""
    from perr.machine import idle_priority_supported, lower_this_thread, physical_cores
    from perr.train.cpu.helpers import mask_helper

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(physical_cores())
        assert mask_helper(torch.device("cpu")) == ("background" if idle_priority_supported() else None)
        assert mask_helper(torch.device("cuda")) is None
        if physical_cores() > 1:
            torch.set_num_threads(1)
            assert mask_helper(torch.device("cpu")) == "core"
    finally:
        torch.set_num_threads(before)
    if idle_priority_supported():  # the policy really changes, for the calling thread only
        import threading

        seen: dict[str, int] = {}

        def lowered() -> None:
            tid = lower_this_thread()
            seen["tid"], seen["policy"] = tid, os.sched_getscheduler(0)

        t = threading.Thread(target=lowered)
        t.start()
        t.join()
        assert seen["policy"] == os.SCHED_IDLE and seen["tid"] != threading.get_native_id()
        assert os.sched_getscheduler(0) != os.SCHED_IDLE


def test_dropout_plan_turns_itself_off_for_a_model_with_other_randomness(store):
    """A model that draws random numbers besides dropout would have them reordered by drawing ahead:
    the plan sees the generator move more than its draws explain and stops drawing ahead."""
    from perr.models.fusion import FusionModel
    from perr.train.cpu.masks import MaskPlan

    class Noisy(FusionModel):
        def forward(self, x, mask=None):
            torch.rand(3)  # e.g. input noise or stochastic depth
            return super().forward(x, mask)

    plan = MaskPlan()
    ahead = _two_epochs(store, plan, Noisy)
    inline = _two_epochs(store, None, Noisy)
    assert not plan.enabled and plan.steps_ahead == 0
    assert ahead[0] == inline[0] and torch.equal(ahead[2], inline[2])


class _PlainDropoutModel(torch.nn.Module):
    """A new model as anyone would write it: plain PyTorch, `nn.Dropout`, nothing from perr's helpers."""

    def __init__(self, args):
        super().__init__()
        self.args = args
        self.proj = torch.nn.ModuleDict(
            {k: torch.nn.Linear(v, args.d_model) for k, v in args.input_dims.items()}
        )
        self.drop = torch.nn.Dropout(args.dropout)
        self.head = torch.nn.Linear(args.d_model, args.n_classes)

    def forward(self, x, mask=None):
        from perr.models import ModelOutput

        h = sum(self.drop(self.proj[k](x[k])).mean(dim=1) for k in self.proj)
        logits = self.head(h)
        return ModelOutput(logits, logits.unsqueeze(1).expand(-1, len(self.proj), -1), None)

    def loss(self, out, y, mask=None):
        return torch.nn.functional.cross_entropy(out.logits, y)


@pytest.fixture
def plain_dropout_model():
    """A model registered for one test only: left in the registry it would change the model choices that
    other tests read from the CLI, whose help was generated at import."""
    from perr.models import MODELS

    MODELS.register("test-plain-dropout")(_PlainDropoutModel)
    yield "test-plain-dropout"
    MODELS.unregister("test-plain-dropout")


def test_a_plain_pytorch_model_trains_with_and_without_the_cpu_helpers(store, plain_dropout_model):
    """A registered model written with plain `nn.Dropout` trains one epoch with the helpers on and off
    (`--set cpu_helpers=off`), to the same loss, weights and generator state; with them on and a core
    spare, the helper really draws its masks ahead."""
    from perr.machine import physical_cores
    from perr.train import Trainer

    def one_epoch(on: bool):
        cfg = _cfg(model=plain_dropout_model, epochs=1, threads=1, cpu_helpers="on" if on else "off")
        with Trainer.from_config(cfg, store) as trainer:
            loss = trainer.epoch()["train_loss"]
            return loss, trainer.model.state_dict(), torch.get_rng_state(), trainer.helpers

    on, off = one_epoch(True), one_epoch(False)
    assert off[3].masks is None and off[3].branches is None
    assert on[0] == off[0] and torch.equal(on[2], off[2])
    for k in on[1]:
        assert torch.equal(on[1][k], off[1][k]), k
    if physical_cores() > 1:
        assert on[3].masks.enabled and on[3].masks.steps_ahead > 0


def test_cpu_helpers_are_chosen_per_device_mode_and_load(monkeypatch):
    """auto runs the helpers only while other work leaves a core free; on runs them anyway; off and a
    GPU never."""
    from perr.machine import physical_cores
    from perr.train.cpu import CpuHelpers
    from perr.train.cpu import helpers as helpers_mod

    cpu, busy, free = torch.device("cpu"), float(physical_cores()), 0.0
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for load, mode, runs in [
            (free, "auto", True),
            (busy, "auto", False),
            (busy, "on", True),
            (free, "off", False),
        ]:
            monkeypatch.setattr(helpers_mod.os, "getloadavg", lambda load=load: (load, load, load))
            chosen = CpuHelpers.choose(cpu, mode)
            assert (chosen.masks is not None or chosen.branches is not None) == runs, (load, mode)
            chosen.close()
        gpu = CpuHelpers.choose(torch.device("cuda"), "on")
        assert gpu.masks is None and gpu.branches is None
    finally:
        torch.set_num_threads(before)


def test_helpers_leave_the_model_as_it_was(store):
    """attach/detach route the modules and put them back: same modules, parameters and forward."""
    from perr.train import Trainer

    with Trainer.from_config(_cfg(epochs=1, threads=1, cpu_helpers="on"), store) as trainer:
        model = trainer.model
        patched = [m for m in model.modules() if "forward" in vars(m)]
        assert patched and trainer.helpers.describe()["dropout_masks"] is not None
        names = [n for n, _ in model.named_modules()]
    assert not [m for m in model.modules() if "forward" in vars(m)]
    assert [n for n, _ in model.named_modules()] == names


def test_batches_reach_another_device_in_one_copy_per_buffer(store):
    """The transfer branch (CUDA on a GPU machine) on CPU: a batch moves as its three buffers and the
    modalities are views of the moved feature buffer (the meta device stands in for the GPU's memory)."""
    data = _batches(store)
    host = data.gather(np.arange(5, 12))
    rows, x, mask, y = data.unpack(host, torch.device("meta"))
    assert np.array_equal(rows, np.arange(5, 12)) and y.device.type == "meta" and y.shape == (7,)
    sp = data.split
    for m in sp.modalities:
        assert x[m].device.type == "meta" and x[m].shape == (7, sp.header.T, sp.header.dims[m])
        assert mask[m].device.type == "meta" and mask[m].dtype == torch.bool
    bases = {x[m].untyped_storage().data_ptr() for m in sp.modalities}
    assert len(bases) == 1  # one buffer, one copy
    # and on the host, the same views hold the stored values
    _, hx, hmask, _ = data.unpack(host, torch.device("cpu"))
    for m in sp.modalities:
        assert np.array_equal(hx[m].numpy(), np.asarray(sp.features(m)[5:12], dtype=np.float32))
        assert np.array_equal(hmask[m].numpy(), np.asarray(sp.mask(m)[5:12]) != 0)


_HEAP_PROBE = """
import sys
import numpy as np
from perr.machine import bound_heap_growth
if sys.argv[1] == "bound":
    assert bound_heap_growth()
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
base = rss()
for _ in range(3):
    block = np.ones(20 << 20, np.uint8)  # an evaluation batch's size, touched
    small = [np.ones(1000) for _ in range(100)]  # allocated after it: the heap's top stays in use
    del block
print((rss() - base) >> 20)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc only"
)
def test_bound_heap_growth_returns_freed_large_blocks_to_the_os():
    """With glibc's dynamic rule a freed 20 MB block raises the mmap threshold, so the next one comes
    from the heap and stays resident after it is freed; with the threshold fixed it is unmapped."""

    def growth_mb(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _HEAP_PROBE, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout)

    assert growth_mb("bound") < 5
    assert growth_mb("dynamic") >= 15  # the probe does show the effect it guards against
