"""Seeded splits on a synthetic labelled manifest: per-class ratios, drama disjointness, determinism."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perr.annotate.splits import split_clips, split_summary
from perr.cli import app
from perr.labels import FINE
from perr.manifest import Clip, load_manifest, write_manifest

#: Synthetic class sizes (uneven, ERATO-like imbalance); 20% of each rounds to 8, 12, 5, 2, 20.
SIZES = {"hostile": 40, "tense": 61, "mild": 27, "intimate": 9, "neutral": 100}


def synthetic_clips(n_dramas: int = 12) -> list[Clip]:
    rng = random.Random(7)
    clips = []
    for label, n in SIZES.items():
        for i in range(n):
            clips.append(
                Clip(
                    clip_id=f"syn-{label}-{i:03d}",
                    video="synthetic.mp4",
                    label=label,
                    drama=f"synthetic-drama-{rng.randrange(n_dramas):02d}",
                    status="annotated",
                )
            )
    # Clips that must not be split.
    clips.append(
        Clip(clip_id="syn-discarded", video="synthetic.mp4", status="discarded", drama="synthetic-drama-00")
    )
    clips.append(Clip(clip_id="syn-review", video="synthetic.mp4", label="mild", status="review", drama="x"))
    clips.append(Clip(clip_id="syn-unlabelled", video="synthetic.mp4", status="proposal", drama="x"))
    rng.shuffle(clips)
    return clips


def test_stratified_twenty_percent_per_class() -> None:
    clips = split_clips(synthetic_clips(), "stratified", seed=3)
    summary = split_summary(clips)
    for label, n in SIZES.items():
        assert summary["test"][label] == round(0.2 * n), label
        assert summary["train"][label] == n - round(0.2 * n), label
    assert summary["val"]["total"] == 0
    skipped = {
        c.clip_id: c.split for c in clips if c.clip_id in ("syn-discarded", "syn-review", "syn-unlabelled")
    }
    assert skipped == {"syn-discarded": None, "syn-review": None, "syn-unlabelled": None}


def test_stratified_with_val() -> None:
    summary = split_summary(
        split_clips(synthetic_clips(), "stratified", seed=3, test_fraction=0.2, val_fraction=0.1)
    )
    for label, n in SIZES.items():
        assert summary["val"][label] == round(0.1 * n), label
        assert summary["test"][label] + summary["val"][label] + summary["train"][label] == n


def test_deterministic_by_seed_and_independent_of_row_order() -> None:
    clips = synthetic_clips()
    for mode in ("stratified", "drama"):
        a = {c.clip_id: c.split for c in split_clips(clips, mode, seed=11)}
        b = {c.clip_id: c.split for c in split_clips(list(reversed(clips)), mode, seed=11)}
        c = {c.clip_id: c.split for c in split_clips(clips, mode, seed=12)}
        assert a == b, mode
        assert a != c, mode


def test_drama_disjoint_near_twenty_percent() -> None:
    clips = split_clips(synthetic_clips(), "drama", seed=5, val_fraction=0.1)
    splits_of = {}
    for c in clips:
        if c.split is not None:
            splits_of.setdefault(c.drama, set()).add(c.split)
    assert all(len(s) == 1 for s in splits_of.values()), splits_of
    counts = Counter(c.split for c in clips if c.split is not None)
    total = sum(SIZES.values())
    assert set(counts) == {"train", "val", "test"}
    # Whole dramas (~20 clips each) are moved, so the share is within one drama's size of the target.
    biggest = max(Counter(c.drama for c in clips if c.split is not None).values())
    assert abs(counts["test"] - 0.2 * total) <= biggest / 2
    assert abs(counts["val"] - 0.1 * total) <= biggest / 2


def test_drama_split_needs_dramas() -> None:
    clips = [
        Clip(clip_id="a", video="v.mp4", label="mild"),
        Clip(clip_id="b", video="v.mp4", label="mild", drama="d"),
    ]
    with pytest.raises(ValueError, match="missing for 1: \\['a'\\]"):
        split_clips(clips, "drama", seed=0)
    one = [Clip(clip_id=f"c{i}", video="v.mp4", label="mild", drama="d") for i in range(3)]
    with pytest.raises(ValueError, match="at least 2 dramas"):
        split_clips(one, "drama", seed=0)
    with pytest.raises(ValueError, match="unknown split mode"):
        split_clips(one, "random", seed=0)


def test_cli_split_writes_manifest(tmp_path: Path) -> None:
    src = write_manifest(tmp_path / "synthetic_final.jsonl", synthetic_clips())
    out = tmp_path / "split.jsonl"
    res = CliRunner().invoke(
        app, ["annotate", "split", str(src), "--out", str(out), "--seed", "1", "--mode", "drama"]
    )
    assert res.exit_code == 0, res.output
    clips = load_manifest(out)
    assert len(clips) == sum(SIZES.values()) + 3
    assert {c.split for c in clips} == {"train", "test", None}
    assert all(f in res.output for f in FINE)
    bad = CliRunner().invoke(app, ["annotate", "split", str(src), "--out", str(out), "--test-frac", "1.5"])
    assert bad.exit_code == 2 and "--test-frac" in bad.output
