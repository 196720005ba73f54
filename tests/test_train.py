"""Trainer end to end on a tiny store: train → checkpoint → kill → resume → evaluate, and refusal of bad data."""

import dataclasses
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
