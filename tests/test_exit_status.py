"""The README's exit-status table, row by row, for several commands (real files, no mocks):

0 — everything the command was given succeeded; 1 — a batch command met inputs that failed (the others are
done); 2 — a usage error: a bad option, an unreadable manifest or export, a run folder holding another
configuration. A usage error is one ``error:`` line, never a traceback (perr.cli maps perr.errors.PerrError).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perr.cli import app
from perr.manifest import Clip, write_manifest
from toydata import TINY, make_toy_store


def perr(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.output
    return res.exit_code, res.output


def usage_error(args: list[object], says: str) -> None:
    code, out = perr(*args)
    assert code == 2, out
    assert "Traceback" not in out and says in out, out


@pytest.fixture
def manifests(tmp_path: Path) -> dict[str, Path]:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # a manifest names its videos; validating one checks that they exist
    clips = [
        Clip(clip_id=f"c{i}", video=video.name, label=label, drama=f"d{i % 3}", status="annotated")
        for i, label in enumerate(["hostile", "tense", "mild", "intimate", "neutral"] * 4)
    ]
    good = write_manifest(tmp_path / "good.jsonl", clips)
    missing = write_manifest(
        tmp_path / "missing.jsonl", [*clips, Clip(clip_id="gone", video="gone.mp4", label="mild")]
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"clip_id": "x", "video": "clip.mp4"}\nnot json at all\n', encoding="utf-8")
    return {"good": Path(good), "missing": Path(missing), "bad": bad}


def test_zero_when_everything_succeeded(manifests, tmp_path):
    assert perr("models")[0] == 0
    assert perr("data", "validate", manifests["good"])[0] == 0
    assert perr("annotate", "split", manifests["good"], "--out", tmp_path / "split.jsonl")[0] == 0


def test_one_when_a_batch_met_inputs_that_failed(manifests, tmp_path):
    code, out = perr("data", "validate", manifests["missing"])
    assert code == 1 and "gone.mp4" in out, out
    code, out = perr("build", "shots", tmp_path / "no-such-video.mp4", "--out", tmp_path / "shots")
    assert code == 1 and "1 of 1 file(s) failed" in out, out
    export = tmp_path / "export.json"
    bad_vote = {"id": 1, "completed_by": 1, "result": [{"from_name": "label", "value": {"choices": 3}}]}
    export.write_text(json.dumps([{"id": 1, "data": {"clip_id": "c0"}, "annotations": [bad_vote]}]))
    code, out = perr(
        "annotate", "import", export, "--manifest", manifests["good"], "--out", tmp_path / "final.jsonl"
    )
    assert code == 1, out


def test_two_for_a_bad_option(manifests, tmp_path):
    usage_error(["build", "shots", manifests["good"], "--out", tmp_path, "--detector", "nope"], "nope")
    usage_error(["annotate", "split", manifests["good"], "--out", tmp_path / "s.jsonl", "--mode", "x"], "'x'")
    usage_error(["train", tmp_path, "--out", tmp_path / "r", "--set", "no_such_key=1"], "no_such_key")


def test_two_for_an_unreadable_manifest_or_export(manifests, tmp_path):
    bad = manifests["bad"]
    usage_error(["stats", bad, "--out", tmp_path / "stats"], f"error: {bad}")
    usage_error(["annotate", "split", bad, "--out", tmp_path / "s.jsonl"], f"error: {bad}")
    usage_error(["annotate", "export", bad, "--out", tmp_path / "ls"], f"error: {bad}")
    usage_error(
        ["features", "pack", tmp_path, "--manifest", bad, "--out", tmp_path / "s"], "no extraction.json"
    )
    export = tmp_path / "export.json"
    export.write_text('{"not": "a task list"}')
    usage_error(["annotate", "agreement", export], "error:")
    usage_error(["evaluate", tmp_path / "none.pt", tmp_path], "error: checkpoint not found")


def test_two_for_a_run_folder_holding_another_configuration(tmp_path):
    store = make_toy_store(tmp_path / "store", sizes={"train": 20, "val": 10})
    args = ["train", store, "--out", tmp_path / "run", *(x for s in TINY for x in ("--set", s))]
    assert perr(*args, "--set", "epochs=1")[0] == 0
    usage_error([*args, "--set", "epochs=1", "--set", "lr=0.001"], "holds a run with a different config")
