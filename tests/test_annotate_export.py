"""Label Studio config and tasks written by `perr annotate export` (synthetic clip proposals)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import ffmpeg, shared_file
from perr.annotate import schema
from perr.annotate.export import export_tasks, labeling_config, media_url
from perr.annotate.records import parse_export
from perr.cli import app
from perr.labels import DEFINITIONS, FINE
from perr.manifest import Character, Clip, SubtitleEvent, write_manifest


def test_config_asks_the_paper_questions() -> None:
    root = ET.fromstring(labeling_config())
    controls = {el.get("name"): el for el in root.iter() if el.get("toName") == schema.VIDEO}
    assert set(controls) == {
        schema.SUBTITLES,
        schema.DISCARD,
        schema.DISCARD_REASON,
        schema.PAIR,
        schema.LABEL,
    }
    video = next(el for el in root.iter("Video"))
    assert (video.get("name"), video.get("value")) == (schema.VIDEO, "$video")
    label = controls[schema.LABEL]
    # The five fine classes, in taxonomy order, each with its Table 1 definition; no coarse question.
    assert [(c.get("value"), c.get("hint")) for c in label.iter("Choice")] == [
        (c, DEFINITIONS[c]) for c in FINE
    ]
    assert not any(el.get("value") in ("negative", "positive") for el in root.iter("Choice"))
    pair = controls[schema.PAIR]
    assert (pair.get("choice"), pair.get("value")) == ("multiple", "$pair_options")
    assert controls[schema.SUBTITLES].get("editable") == "true"
    assert [c.get("value") for c in controls[schema.DISCARD].iter("Choice")] == [schema.DISCARD_VALUE]


def test_media_url(tmp_path: Path) -> None:
    (tmp_path / "media dir").mkdir()
    assert (
        media_url("media dir/ep 1.mp4", tmp_path, tmp_path) == "/data/local-files/?d=media%20dir/ep%201.mp4"
    )
    assert media_url("https://x.org/a.mp4", tmp_path, tmp_path) == "https://x.org/a.mp4"
    assert media_url("a.mp4", tmp_path) == str((tmp_path / "a.mp4").resolve())
    assert media_url("a.mp4", tmp_path, tmp_path, "http://files:8081/") == "http://files:8081/a.mp4"
    with pytest.raises(ValueError, match="not under the document root"):
        media_url("/elsewhere/a.mp4", tmp_path, tmp_path)


def test_export_tasks(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    clips = [
        Clip(
            clip_id="s1",
            video="synthetic.mp4",
            drama="synthetic drama",
            start=10.0,
            end=25.5,
            characters=[Character(id="p1", thumbnail="faces/p1.jpg"), Character(id="p2"), Character(id="p3")],
            candidates=["p2", "p1", "p3"],
            subtitles=[
                SubtitleEvent(start=11.0, end=12.5, text="hello"),
                SubtitleEvent(start=13, end=14, text="<b>"),
            ],
        ),
        Clip(
            clip_id="s2", video="frames", fps=25.0, candidates=["p1", "p2"]
        ),  # frames folder: not exportable
        Clip(clip_id="s3", video="synthetic.mp4", candidates=["p1"]),  # one candidate: nothing to pick
        Clip(clip_id="s4", video="/outside/root.mp4", candidates=["p1", "p2"]),  # not under the document root
    ]
    manifest = write_manifest(tmp_path / "synthetic_proposals.jsonl", clips)
    res = export_tasks(manifest, tmp_path / "ls", document_root=tmp_path)
    assert res.n_tasks == 1
    assert sorted((p.clip_id, p.field) for p in res.problems) == [
        ("s2", "video"),
        ("s3", "candidates"),
        ("s4", "media"),
    ]
    (task,) = json.loads(res.tasks.read_text())
    d = task["data"]
    assert d["video"] == "/data/local-files/?d=synthetic.mp4#t=10.000,25.500"
    assert d["clip_id"] == "s1" and d["candidates"] == ["p2", "p1", "p3"]
    assert "10.00 s – 25.50 s" in d["info"] and "synthetic drama" in d["info"]
    assert [o["value"] for o in d["pair_options"]] == ["p2", "p1", "p3"]
    assert '<img src="/data/local-files/?d=faces/p1.jpg"' in d["pair_options"][1]["html"]
    assert d["pair_options"][0]["html"] == "p2"  # no thumbnail: the id only
    (pred,) = task["predictions"]
    assert pred["model_version"] == schema.OCR_MODEL_VERSION
    (r,) = pred["result"]
    assert (r["from_name"], r["to_name"], r["type"]) == (schema.SUBTITLES, schema.VIDEO, "textarea")
    assert r["value"]["text"] == ["[11.00-12.50] hello", "[13.00-14.00] <b>"]
    # Every line parses back to the event it came from.
    assert [schema.parse_subtitle_line(x) for x in r["value"]["text"]] == clips[0].subtitles
    ET.fromstring(res.config.read_text())


def test_cli_export(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path / "synthetic.jsonl",
        [
            Clip(
                clip_id="s1",
                video="synthetic.mp4",
                candidates=["a", "b"],
                characters=[Character(id="a"), Character(id="b")],
            ),
            Clip(clip_id="s2", video="synthetic.mp4", candidates=["a"]),
        ],
    )
    res = CliRunner().invoke(app, ["annotate", "export", str(manifest), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1, res.output  # s2 cannot be labelled: named, s1 still exported
    assert "1 task(s)" in res.output and "clip s2: candidates" in res.output
    (task,) = json.loads((tmp_path / "o" / "tasks.json").read_text())
    assert task["data"]["video"] == str((tmp_path / "synthetic.mp4").resolve())
    assert "predictions" not in task  # no OCR subtitles: nothing to prefill


@pytest.mark.video
def test_cut_clips_frame_accurate_and_subtitles_in_clip_time(tmp_path: Path) -> None:
    av = pytest.importorskip("av", reason="decoding the cut needs PyAV (perr[video])")
    # Synthetic episode: red 0-2 s, green 2-4 s, blue 4-6 s, 25 fps, with a tone.
    src = tmp_path / "synthetic_colors.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=64x48:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "color=c=lime:s=64x48:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=64x48:r=25:d=2",
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:d=6",
        "-filter_complex",
        "[0:v][1:v][2:v]concat=n=3:v=1:a=0[v]",
        "-map",
        "[v]",
        "-map",
        "3:a",
        "-c:v",
        "libx264",
        "-g",
        "50",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(src),
    )
    clip = Clip(
        clip_id="s1",
        video=src.name,
        start=2.0,
        end=4.0,
        candidates=["a", "b"],
        characters=[Character(id="a"), Character(id="b")],
        subtitles=[SubtitleEvent(start=2.5, end=3.25, text="in green")],
    )
    manifest = write_manifest(tmp_path / "synthetic.jsonl", [clip])
    out = tmp_path / "ls"
    res = export_tasks(manifest, out, document_root=tmp_path, cut=True)
    assert res.problems == [] and res.n_tasks == 1
    cut = out / "clips" / "s1.mp4"
    (task,) = json.loads(res.tasks.read_text())
    assert task["data"]["video"] == "/data/local-files/?d=ls/clips/s1.mp4"
    assert task["data"]["time_offset"] == 2.0
    assert task["predictions"][0]["result"][0]["value"]["text"] == ["[0.50-1.25] in green"]

    with av.open(str(cut)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
        assert f.streams.audio  # the sound comes along
    assert len(frames) == 50  # 2 s at 25 fps
    for rgb in (frames[0], frames[-1]):  # all green: the cut starts and ends inside the green part
        r, g, b = rgb.reshape(-1, 3).mean(axis=0)
        assert g > 200 and r < 40 and b < 40

    # Corrections come back in episode time.
    export = [
        {
            "id": 1,
            "data": task["data"],
            "annotations": [
                {
                    "id": 1,
                    "completed_by": 1,
                    "created_at": "2024-01-01T00:00:00Z",
                    "result": [
                        {
                            "from_name": schema.PAIR,
                            "to_name": "video",
                            "type": "choices",
                            "value": {"choices": ["a", "b"]},
                        },
                        {
                            "from_name": schema.LABEL,
                            "to_name": "video",
                            "type": "choices",
                            "value": {"choices": ["mild"]},
                        },
                        {
                            "from_name": schema.SUBTITLES,
                            "to_name": "video",
                            "type": "textarea",
                            "value": {"text": ["[0.50-1.25] in green!"]},
                        },
                    ],
                }
            ],
        }
    ]
    (vote,) = parse_export(export).tasks[0].votes
    assert [(e.start, e.end, e.text) for e in vote.subtitles] == [(2.5, 3.25, "in green!")]

    # Resumable: an existing cut is reused, not redone.
    before = cut.stat().st_mtime_ns
    export_tasks(manifest, out, document_root=tmp_path, cut=True)
    assert cut.stat().st_mtime_ns == before


@pytest.mark.video
def test_cut_real_clip_matches_source_frames(tmp_path: Path) -> None:
    """Cut 2.0–5.0 s of the real Megamind.avi (B-frames, times out of decode order): the cut holds
    3 s of frames and its first frame is the source frame at 2.0 s."""
    av = pytest.importorskip("av", reason="decoding needs PyAV (perr[video])")
    src = shared_file("video/opencv/Megamind.avi")

    def frames(path: Path) -> list[tuple[float, np.ndarray]]:
        with av.open(str(path)) as f:
            return [(float(fr.time), fr.to_ndarray(format="gray").astype(float)) for fr in f.decode(video=0)]

    clip = Clip(clip_id="megamind_2_5", video=str(src), start=2.0, end=5.0, candidates=["a", "b"])
    manifest = write_manifest(tmp_path / "m.jsonl", [clip])
    res = export_tasks(manifest, tmp_path / "ls", document_root=tmp_path, cut=True)
    assert res.problems == []
    source = frames(src)
    cut = frames(tmp_path / "ls" / "clips" / "megamind_2_5.mp4")
    fps = (len(source) - 1) / (source[-1][0] - source[0][0])
    assert abs(len(cut) - 3.0 * fps) <= 1
    # The source frame that best matches the cut's first frame is the one at 2.0 s (within half a frame).
    first = cut[0][1]
    errors = sorted((np.abs(first - img).mean(), t) for t, img in source)
    (best_err, best_t), (next_err, _) = errors[0], errors[1]
    assert abs(best_t - 2.0) <= 0.5 / fps and best_err < 2.0, errors[:3]
    assert next_err > best_err + 1.0, errors[:3]  # and it is clearly the best
