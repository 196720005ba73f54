"""`perr build run` end to end on real clips: characters on Megamind.avi and short_hamilton_clip.mp4,
per-file error isolation (a truncated file, the corrupt Megamind_bugy.avi), resume, outputs, stats.

One build per session (the expensive part: decoding, face embeddings, OCR) shared by the tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import SHARED_DATA, VIDEO_EXTRA, ffmpeg, shared_file

pytest.importorskip(*VIDEO_EXTRA)

from perr.cli import app
from perr.construct.config import BuildConfig
from perr.construct.run import build
from perr.construct.scan import ShotScan
from perr.construct.shots import load_shots
from perr.execution import ExecutionConfig
from perr.faces import embed_image
from perr.manifest import Clip, load_manifest
from perr.stats import pair_timing
from perr.subtitles import read_srt

pytestmark = [pytest.mark.video, pytest.mark.slow]

VIDEO = SHARED_DATA / "video"
# Megamind.avi, by eye: shots 1 and 3 show the woman (a blurred man behind her), shots 2 and 4 the man.
WOMAN_SHOTS, MAN_SHOTS = (0, 2), (1, 3)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    mm = shared_file("video/opencv/Megamind.avi")
    bugy = shared_file("video/opencv/Megamind_bugy.avi")
    ham = shared_file("video/face_recognition/short_hamilton_clip.mp4")
    d = tmp_path_factory.mktemp("build")
    inputs = d / "in"
    inputs.mkdir()
    trunc = inputs / "synthetic_truncated.avi"
    trunc.write_bytes(mm.read_bytes()[:4000])  # header only: no decodable frame
    out = d / "out"
    report = build(
        [str(VIDEO / "opencv" / "Megamind*.avi"), ham, inputs], out, BuildConfig(), show_progress=False
    )
    return {"out": out, "report": report, "mm": mm, "bugy": bugy, "ham": ham, "trunc": trunc}


def _clips(built: dict) -> dict[str, Clip]:
    return {Path(c.video).stem: c for c in load_manifest(built["out"] / "manifest.jsonl")}


def _seconds_in(clip: Clip, cid: str, a: float, b: float) -> float:
    return sum(max(0.0, min(s.end, b) - max(s.start, a)) for s in clip.character(cid).spans)


def test_batch_isolates_failures_and_reports_them(built: dict) -> None:
    status = {Path(r.video).name: r for r in built["report"].results}
    assert set(status) == {
        "Megamind.avi",
        "Megamind_bugy.avi",
        "short_hamilton_clip.mp4",
        "synthetic_truncated.avi",
    }
    bad = status["synthetic_truncated.avi"]
    print("truncated file:", bad.error)
    assert bad.status == "failed" and bad.error
    assert "no frame could be decoded" in bad.error or "cannot open" in bad.error
    assert all(
        status[n].status == "done" for n in ("Megamind.avi", "Megamind_bugy.avi", "short_hamilton_clip.mp4")
    )
    # Megamind_bugy.avi (shuffled PTS, no audio) is still usable: processed, not failed
    # (the reader's repair report is checked in test_video.py).
    failures = json.loads((built["out"] / "failures.json").read_text())
    assert [Path(f["video"]).name for f in failures] == ["synthetic_truncated.avi"]


def test_outputs_per_video(built: dict) -> None:
    out = built["out"]
    shots = load_shots(out / "shots" / "Megamind.csv")
    assert [round(s.start, 1) for s in shots[1:]] == pytest.approx([4.1, 6.5, 8.4], abs=0.1)
    assert (out / "subtitles" / "Megamind.srt").exists()
    assert read_srt(out / "subtitles" / "Megamind.srt") == []  # no subtitles in this scene
    clips = _clips(built)
    assert set(clips) == {"Megamind", "Megamind_bugy", "short_hamilton_clip"}
    for c in clips.values():
        assert c.status == "proposal" and 5.0 <= (c.duration or 0) <= 35.0
        assert 2 <= len(c.characters) <= 6 and 1 <= len(c.candidates) <= 3
        assert c.candidates == [ch.id for ch in c.characters[:3]]
        occ = [ch.occurrences for ch in c.characters]
        assert occ == sorted(occ, reverse=True)
        for cid in c.candidates:
            thumb = out / (c.character(cid).thumbnail or "missing")
            assert thumb.is_file() and thumb.read_bytes()[:2] == b"\xff\xd8"  # JPEG
        assert (Path(out) / c.video).resolve().exists()  # relative to the manifest's folder


def test_megamind_woman_and_man_are_the_pair_and_keep_one_identity(built: dict) -> None:
    clip = _clips(built)["Megamind"]
    assert len(clip.shots) == 4
    shots = [(s.start, s.end) for s in clip.shots]

    def coverage(cid: str) -> list[float]:
        return [_seconds_in(clip, cid, a, b) / (b - a) for a, b in shots]

    top2 = {cid: coverage(cid) for cid in clip.candidates[:2]}
    roles = {}
    for cid, cov in top2.items():
        mostly = tuple(i for i, v in enumerate(cov) if v >= 0.6)
        absent = tuple(i for i, v in enumerate(cov) if v <= 0.1)
        roles[mostly] = cid
        assert len(mostly) + len(absent) == 4, f"{cid} coverage per shot {cov}"
    # one character spans both woman shots, the other both man shots: neither identity was split
    assert set(roles) == {WOMAN_SHOTS, MAN_SHOTS}
    # anyone else (the blurred man behind her) appears only in the woman's shots
    for ch in clip.characters[2:]:
        cov = coverage(ch.id)
        assert cov[MAN_SHOTS[0]] <= 0.1 and cov[MAN_SHOTS[1]] <= 0.1


def test_hamilton_performer_is_lin_manuel_miranda(built: dict) -> None:
    import cv2

    clip = _clips(built)["short_hamilton_clip"]
    emb = np.load(built["out"] / "characters" / "short_hamilton_clip.npz")

    def ref(name: str) -> np.ndarray:
        img = cv2.cvtColor(cv2.imread(str(shared_file(f"video/face_recognition/{name}"))), cv2.COLOR_BGR2RGB)
        return embed_image(img)

    lin, alex = ref("lin-manuel-miranda.png"), ref("alex-lacamoire.png")
    performer = emb[f"{clip.clip_id}/{clip.candidates[0]}"]  # most frequent character
    d_lin, d_alex = float(np.linalg.norm(performer - lin)), float(np.linalg.norm(performer - alex))
    print(f"performer → lin-manuel-miranda {d_lin:.3f}, alex-lacamoire {d_alex:.3f}")
    assert d_lin < 0.6 and d_lin < d_alex
    # and no other character of the clip is him
    for cid in clip.candidates[1:]:
        assert np.linalg.norm(emb[f"{clip.clip_id}/{cid}"] - lin) > d_lin


def test_resume_skips_finished_videos_and_redoes_missing_work(built: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(built["out"], out)
    before = (out / "manifest.jsonl").read_text()
    (out / "done" / "Megamind_bugy.json").unlink()  # as if the run had been killed during this video
    (out / "clips" / ".Megamind_bugy.jsonl.abc123.tmp").write_text("{half a reco")  # …mid-write
    report = build(
        [built["bugy"], built["mm"], built["ham"], built["trunc"]], out, BuildConfig(), show_progress=False
    )
    status = {Path(r.video).name: r.status for r in report.results}
    assert status == {
        "Megamind_bugy.avi": "done",
        "Megamind.avi": "skipped",
        "short_hamilton_clip.mp4": "skipped",
        "synthetic_truncated.avi": "failed",
    }
    after = {
        json.loads(x)["clip_id"]: json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()
    }
    assert after == {json.loads(x)["clip_id"]: json.loads(x) for x in before.splitlines()}
    assert not list(out.rglob("*.tmp"))


def test_stats_on_the_built_manifest(built: dict, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["stats", str(built["out"] / "manifest.jsonl"), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "stats.json").read_text())
    assert s["n_clips"] == 3 and s["classes"] is None
    assert s["shots_per_clip"]["max"] >= 4
    # shot / reverse-shot: the pair never shares the screen in Megamind.avi
    mm = _clips(built)["Megamind"]
    assert pair_timing(mm).mode == "IoM=0"  # type: ignore[union-attr]
    for fig in ("fig2_statistics.png", "fig3_interaction_modes.png"):
        assert (tmp_path / fig).read_bytes()[:4] == b"\x89PNG"


def test_cli_build_run_on_a_faceless_clip(tmp_path: Path) -> None:
    """synthetic: a 6 s test pattern (no faces) and a missing file through the real CLI."""

    clip = tmp_path / "synthetic_pattern.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=25:d=6",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(clip),
    )
    out = tmp_path / "out"
    args = [
        "build",
        "run",
        str(tmp_path / "*.mp4"),
        str(tmp_path / "missing.mp4"),
        "--out",
        str(out),
        "--subtitles",
        "none",
        "--no-progress",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output  # one input failed: the batch finishes, the status says so
    assert "1 of 2 file(s) failed" in res.output and "file not found" in res.output
    assert (out / "manifest.jsonl").read_text() == ""
    dropped = load_manifest(out / "dropped" / "synthetic_pattern.jsonl")
    assert [d.notes for d in dropped] == ["0 character(s): a pair needs two"]
    assert not (out / "subtitles").exists()
    res = CliRunner().invoke(app, [*args, "--max-clip", "2"])
    assert res.exit_code == 2 and "shorter than min_clip" in res.output
    ok = CliRunner().invoke(app, args[:3] + args[4:])  # only the good file: exit 0
    assert ok.exit_code == 0, ok.output


def _records(manifest: Path) -> dict[str, dict]:
    """Manifest records by clip id, without the video path (relative to each output folder)."""
    recs = [json.loads(x) for x in manifest.read_text().splitlines()]
    return {r["clip_id"]: {k: v for k, v in r.items() if k != "video"} for r in recs}


def test_parallel_workers_build_the_same_manifest(built: dict, tmp_path: Path) -> None:
    """`jobs=2`: two worker processes give the same proposals, and still isolate the bad file."""
    out = tmp_path / "par"
    report = build(
        [built["mm"], built["bugy"], built["ham"], built["trunc"]],
        out,
        BuildConfig(),
        show_progress=False,
        execution=ExecutionConfig(backend="local", jobs=2),
    )
    status = {Path(r.video).name: r.status for r in report.results}
    assert status == {
        "Megamind.avi": "done",
        "Megamind_bugy.avi": "done",
        "short_hamilton_clip.mp4": "done",
        "synthetic_truncated.avi": "failed",
    }
    assert [Path(r.video).name for r in report.results] == [
        "Megamind.avi",
        "Megamind_bugy.avi",
        "short_hamilton_clip.mp4",
        "synthetic_truncated.avi",
    ]
    assert _records(out / "manifest.jsonl") == _records(built["out"] / "manifest.jsonl")


def test_late_cut_fallback_redoes_the_sampled_pass(built: dict, tmp_path: Path, monkeypatch) -> None:
    """If a cut arrives after frames past it were tracked, the video's sampled pass is redone with the
    final cuts (forced here): the result is the same as when every cut came in time."""
    monkeypatch.setattr(ShotScan, "consistent", lambda self: False)
    out = tmp_path / "late"
    report = build([built["mm"]], out, BuildConfig(), show_progress=False)
    assert report.results[0].counts.get("resampled") is True
    want = {
        k: v
        for k, v in _records(built["out"] / "manifest.jsonl").items()
        if k.startswith("Megamind_") and not k.startswith("Megamind_bugy")
    }
    assert want and _records(out / "manifest.jsonl") == want


def test_build_workers_load_no_clustering_libraries() -> None:
    """A build worker scans chunks and embeds faces; clustering identities happens in the main process.
    So the worker's module (what a spawned worker or a Ray task imports) leaves scikit-learn and SciPy
    out: importing them cost each worker ~2 CPU-s of start-up."""
    import subprocess
    import sys

    code = (
        "import sys, perr.construct.workers\n"
        "print(sorted(m for m in ('sklearn', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
