"""`preload` (perr.train.preload, perr.store.RowFile.load): the splits read every epoch come from memory,
with the bytes the disk holds, so a run gives the same results; auto preloads only what fits."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from perr.config import load_config
from perr.store import RowFile
from perr.train import train
from perr.train.preload import AUTO_SHARE, should_preload
from toydata import TINY, make_toy_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_toy_store(tmp_path_factory.mktemp("toy"))


def test_rows_from_memory_are_the_rows_on_disk(store):
    path = store / "train" / "person_a.npy"
    on_disk, in_memory = RowFile(path), RowFile(path)
    seen: list[int] = []
    in_memory.load(chunk_bytes=1000, on_bytes=seen.append)  # many chunks, the last one short
    assert sum(seen) == on_disk.nbytes == path.stat().st_size - on_disk.offset and len(seen) > 2
    assert np.array_equal(in_memory.memory, np.load(path))
    rows = np.array([7, 3, 4, 5, 99, 0])
    assert np.array_equal(in_memory.read_rows(rows), on_disk.read_rows(rows))
    assert np.array_equal(in_memory.read_range(10, 20), on_disk.read_range(10, 20))
    with pytest.raises(IndexError, match=r"person_a\.npy"):
        in_memory.read_rows(np.array([100]))


def test_auto_preloads_only_what_fits_in_half_the_available_memory():
    assert should_preload("on", 10**12, 1) and not should_preload("off", 1, 10**12)
    assert should_preload("auto", int(AUTO_SHARE * 8e9), int(8e9))
    assert not should_preload("auto", int(AUTO_SHARE * 8e9) + 1, int(8e9))
    assert not should_preload("auto", 1, None)  # memory unknown: read from the disk as before


def _run(store, tmp_path, preload: str):
    cfg = load_config(None, [*TINY, "epochs=2", "model=smta-transformer", f"preload={preload}"])
    res = train(store, dataclasses.replace(cfg), tmp_path / preload)
    history = [json.loads(line) for line in (res.out / "history.jsonl").read_text().splitlines()]
    weights = torch.load(res.out / "best.pt", weights_only=True)
    return history, weights, res.metrics


def test_a_preloaded_run_gives_the_results_of_one_read_from_disk(store, tmp_path):
    on, off = _run(store, tmp_path, "on"), _run(store, tmp_path, "off")
    first = on[0][0]["preload"]
    assert first["preload"] is True and first["bytes"] > 0 and "preload" not in on[0][1]
    assert off[0][0]["preload"]["preload"] is False
    for a, b in zip(on[0], off[0], strict=True):
        assert a["train_loss"] == b["train_loss"] and a["val_weighted_f1"] == b["val_weighted_f1"]
    assert on[2] == off[2]  # test metrics


def test_preload_is_checked():
    with pytest.raises(ValueError, match="preload = 'sometimes': choose one of auto, on, off"):
        load_config(None, ["preload=sometimes"])


@pytest.mark.parametrize(
    ("backend", "asked", "runs_with"),
    [("inline", "auto", "auto"), ("local", "auto", "off"), ("ray", "auto", "off"), ("ray", "on", "on")],
)
def test_grid_runs_side_by_side_do_not_preload_unless_asked(backend, asked, runs_with):
    """`perr benchmark` on worker processes: runs side by side would each hold a copy of the store, all
    judging `auto` from the same free memory, so auto is off there; `on` still forces it."""
    from perr.benchmark import per_run_config
    from perr.config import TrainConfig

    base = TrainConfig(preload=asked, threads=0)
    cfg = per_run_config(base, backend, cpus=3)
    assert cfg.preload == runs_with
    assert cfg.threads == (0 if backend == "inline" else 3)
    assert base.preload == asked  # the caller's config is left alone
