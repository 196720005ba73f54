"""Learning-rate schedules (perr.schedules) and label smoothing, through the real trainer on a tiny store."""

import csv
import dataclasses
import json
import math

import pytest
import torch

from perr.config import load_config
from perr.models import ModelArgs, build_model
from perr.schedules import ScheduleSpec, build_schedule
from perr.train import train
from toydata import TINY, make_toy_store

TRAIN_ROWS, BATCH, EPOCHS = 100, 16, 4
STEPS = math.ceil(TRAIN_ROWS / BATCH) * EPOCHS  # 7 batches an epoch, 28 in all


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_toy_store(tmp_path_factory.mktemp("toy"), sizes={"train": TRAIN_ROWS, "val": 30, "test": 40})


def _cfg(**kw):
    cfg = load_config(None, [*TINY, f"epochs={EPOCHS}", f"batch_size={BATCH}", "lr=0.01", "model=pair-cross"])
    return dataclasses.replace(cfg, **kw)


def _lrs(run) -> list[float]:
    return [json.loads(line)["lr"] for line in (run / "history.jsonl").read_text().splitlines()]


def test_linear_schedule_warms_up_then_decays_to_zero_batch_by_batch(store, tmp_path):
    train(store, _cfg(lr_schedule="linear", warmup=0.2), tmp_path / "r")
    warm = round(0.2 * STEPS)  # 6 warm-up batches, then 22 of decay
    after = [7 * (e + 1) for e in range(EPOCHS)]  # batches done at the end of each epoch
    want = [0.01 * (1 - (s - warm) / (STEPS - warm)) for s in after]
    assert _lrs(tmp_path / "r") == pytest.approx(want, abs=1e-12)
    assert want[-1] == 0.0


def test_step_schedule_is_still_the_papers_steplr(store, tmp_path):
    train(store, _cfg(lr_step=2), tmp_path / "r")
    assert _lrs(tmp_path / "r") == pytest.approx([0.01, 0.001, 0.001, 0.0001])


def test_warmup_and_decay_factor_per_batch_for_every_parameter_group():
    """Both groups (fusion model at lr, text encoder at text_lr) follow one factor, batch by batch."""
    w = torch.nn.Parameter(torch.zeros(1))
    v = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [w], "lr": 1e-3}, {"params": [v], "lr": 5e-5}], lr=1e-3)
    sched = build_schedule(
        "cosine", opt, ScheduleSpec(epochs=2, steps_per_epoch=5, lr_step=1, lr_gamma=0.1, warmup=0.2)
    )
    seen = []
    for _ in range(10):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.after_batch()
    sched.after_epoch()  # a per-batch schedule ignores the epoch tick
    assert seen[0] == pytest.approx([1e-3 / 2, 5e-5 / 2])  # warm-up: batch 0 at 1/2, batch 1 at 2/2
    assert seen[1] == pytest.approx([1e-3, 5e-5])
    assert seen[2 + 4][0] == pytest.approx(1e-3 * 0.5)  # half-way through the 8-batch cosine decay
    assert all(a[1] / a[0] == pytest.approx(0.05) for a in seen)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-18)


def test_killed_and_resumed_linear_run_matches_uninterrupted(store, tmp_path):
    cfg = _cfg(lr_schedule="linear", warmup=0.1)
    full = train(store, cfg, tmp_path / "full")
    train(store, cfg, tmp_path / "resumed", stop_after_epoch=1)
    resumed = train(store, cfg, tmp_path / "resumed")
    assert resumed.metrics["5"]["confusion_matrix"] == full.metrics["5"]["confusion_matrix"]
    assert _lrs(tmp_path / "resumed") == _lrs(tmp_path / "full")
    saved = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert saved["scheduler"]["last_epoch"] == STEPS


def test_label_smoothing_is_the_smoothed_cross_entropy_of_every_term():
    torch.manual_seed(0)
    eps, c = 0.1, 5
    dims = {"person_a": 4, "person_b": 4, "text": 3}
    model = build_model(
        ModelArgs(
            "pair-cross",
            dims,
            n_classes=c,
            d_model=8,
            stage2_hidden=8,
            ff_dim=16,
            heads=2,
            label_smoothing=eps,
        )
    ).eval()
    x = {k: torch.randn(6, 3, d) for k, d in dims.items()}
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    out = model(x)

    def smoothed(logits: torch.Tensor, target: torch.Tensor, e: float) -> torch.Tensor:
        """(1 − ε)·CE + ε·mean_c(−log p_c), per clip."""
        logp = logits.log_softmax(-1)
        return -(1 - e) * logp.gather(-1, target[:, None])[:, 0] - e * logp.mean(-1)

    def eq5(e: float) -> torch.Tensor:
        aux = torch.stack([smoothed(out.aux_logits[:, m], y, e) for m in range(len(dims))], 1).sum(1)
        return (smoothed(out.logits, y, e) + aux).mean()

    want = eq5(eps)
    assert model.loss(out, y).item() == pytest.approx(want.item(), rel=1e-5)
    model.args = dataclasses.replace(model.args, label_smoothing=0.0)
    plain = eq5(0.0)
    assert model.loss(out, y).item() == pytest.approx(plain.item(), rel=1e-5)
    assert plain.item() != pytest.approx(want.item(), rel=1e-4)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lr_schedule", "exp", "lr_schedule = 'exp': choose one of step, linear, cosine"),
        ("warmup", "1.0", "warmup = 1.0: must be < 1"),
        ("label_smoothing", "-0.1", "label_smoothing = -0.1: must be ≥ 0"),
    ],
)
def test_bad_schedule_settings_are_named(key, value, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [f"{key}={value}"])


def test_joint_task_head_learns_the_second_task_and_round_trips(store, tmp_path):
    from perr.checkpoint import Checkpoint
    from perr.train import evaluate

    res = train(store, _cfg(joint_task="3", lr_step=15), tmp_path / "r")
    assert res.metrics["5"]["micro_f1"] > 0.5
    head = res.metrics["joint-3"]  # the joint head's own predictions, beside "3" derived from the 5 classes
    assert head["micro_f1"] > 0.6 and head["n"] == 40  # chance is at most the largest coarse class, 0.4
    assert res.metrics["3"]["derived_from"] == "5" and "derived_from" not in head
    ckpt = Checkpoint.load(tmp_path / "r" / "best.pt")
    assert ckpt.model_args.joint_classes == 3 and ckpt.config.joint_task == "3"
    assert [c for c in ckpt.joint_task.classes] == ["negative", "positive", "neutral"]
    again = evaluate(tmp_path / "r" / "best.pt", store, out=tmp_path / "eval")["metrics"]["joint-3"]
    assert again["confusion_matrix"] == head["confusion_matrix"]
    # predictions.csv carries the joint head beside the task: its rows give back the head's metrics
    with open(tmp_path / "eval" / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 40
    classes = ["negative", "positive", "neutral"]
    for r in rows:
        probs = [float(r[f"joint_p_{c}"]) for c in classes]
        assert sum(probs) == pytest.approx(1, abs=1e-5)
        assert r["joint_pred"] == classes[max(range(3), key=probs.__getitem__)]
    confusion = [
        [sum(r["joint_true"] == t and r["joint_pred"] == p for r in rows) for p in classes] for t in classes
    ]
    assert confusion == head["confusion_matrix"]
    fine_to_coarse = {"hostile": "negative", "tense": "negative", "mild": "positive", "intimate": "positive"}
    assert all(r["joint_true"] == fine_to_coarse.get(r["true"], "neutral") for r in rows)


def test_joint_task_loss_adds_its_weighted_cross_entropy():
    torch.manual_seed(0)
    dims = {"person_a": 4, "person_b": 4, "text": 3}
    for name in ("pair-cross", "smta-transformer"):
        args = ModelArgs(
            name,
            dims,
            n_classes=5,
            d_model=8,
            stage2_hidden=8,
            ff_dim=16,
            heads=2,
            joint_classes=3,
            joint_weight=0.5,
        )
        model = build_model(args).eval()
        out = model({k: torch.randn(4, 3, d) for k, d in dims.items()})
        y = torch.tensor([[0, 0], [1, 2], [4, 1], [3, 2]])
        extra = 0.5 * torch.nn.functional.cross_entropy(out.joint_logits, y[:, 1])
        assert model.loss(out, y).item() == pytest.approx((model.loss(out, y[:, 0]) + extra).item(), rel=1e-5)


def test_joint_task_errors_name_the_store_tasks(store, tmp_path):
    with pytest.raises(ValueError, match="joint_task: this store has no task '9'; it has 5, 3"):
        train(store, _cfg(joint_task="9"), tmp_path / "r")
    with pytest.raises(ValueError, match="joint_task: '5' is the task itself"):
        load_config(None, ["joint_task=5"])
