"""Label Studio config and tasks written by `perr annotate export` (synthetic clip proposals)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perr.annotate import schema
from perr.annotate.export import export_tasks, labeling_config, media_url
from perr.cli import app
from perr.labels import DEFINITIONS, FINE
from perr.manifest import Character, Clip, SubtitleEvent, write_manifest


def test_config_asks_the_paper_questions() -> None:
    root = ET.fromstring(labeling_config())
    controls = {el.get("name"): el for el in root.iter() if el.get("toName") == schema.VIDEO}
    assert set(controls) == {schema.SUBTITLES, schema.DISCARD, schema.DISCARD_REASON, schema.PAIR, schema.LABEL}
    video = next(el for el in root.iter("Video"))
    assert (video.get("name"), video.get("value")) == (schema.VIDEO, "$video")
    label = controls[schema.LABEL]
    # The five fine classes, in taxonomy order, each with its Table 1 definition; no coarse question.
    assert [(c.get("value"), c.get("hint")) for c in label.iter("Choice")] == [(c, DEFINITIONS[c]) for c in FINE]
    assert not any(el.get("value") in ("negative", "positive") for el in root.iter("Choice"))
    pair = controls[schema.PAIR]
    assert (pair.get("choice"), pair.get("value")) == ("multiple", "$pair_options")
    assert controls[schema.SUBTITLES].get("editable") == "true"
    assert [c.get("value") for c in controls[schema.DISCARD].iter("Choice")] == [schema.DISCARD_VALUE]


def test_media_url(tmp_path: Path) -> None:
    (tmp_path / "media dir").mkdir()
    assert media_url("media dir/ep 1.mp4", tmp_path, tmp_path) == "/data/local-files/?d=media%20dir/ep%201.mp4"
    assert media_url("https://x.org/a.mp4", tmp_path, tmp_path) == "https://x.org/a.mp4"
    assert media_url("a.mp4", tmp_path) == str((tmp_path / "a.mp4").resolve())
    assert media_url("a.mp4", tmp_path, tmp_path, "http://files:8081/") == "http://files:8081/a.mp4"
    with pytest.raises(ValueError, match="not under the document root"):
        media_url("/elsewhere/a.mp4", tmp_path, tmp_path)


def test_export_tasks(tmp_path: Path) -> None:
    (tmp_path / "frames").mkdir()
    clips = [
        Clip(clip_id="s1", video="synthetic.mp4", drama="synthetic drama", start=10.0, end=25.5,
             characters=[Character(id="p1", thumbnail="faces/p1.jpg"), Character(id="p2"), Character(id="p3")],
             candidates=["p2", "p1", "p3"],
             subtitles=[SubtitleEvent(start=11.0, end=12.5, text="hello"), SubtitleEvent(start=13, end=14, text="<b>")]),
        Clip(clip_id="s2", video="frames", fps=25.0, candidates=["p1", "p2"]),  # frames folder: not exportable
        Clip(clip_id="s3", video="synthetic.mp4", candidates=["p1"]),  # one candidate: nothing to pick
        Clip(clip_id="s4", video="/outside/root.mp4", candidates=["p1", "p2"]),  # not under the document root
    ]
    manifest = write_manifest(tmp_path / "synthetic_proposals.jsonl", clips)
    res = export_tasks(manifest, tmp_path / "ls", document_root=tmp_path)
    assert res.n_tasks == 1
    assert sorted((p.clip_id, p.field) for p in res.problems) == [("s2", "video"), ("s3", "candidates"), ("s4", "media")]
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
    manifest = write_manifest(tmp_path / "synthetic.jsonl", [
        Clip(clip_id="s1", video="synthetic.mp4", candidates=["a", "b"], characters=[Character(id="a"), Character(id="b")]),
        Clip(clip_id="s2", video="synthetic.mp4", candidates=["a"]),
    ])
    res = CliRunner().invoke(app, ["annotate", "export", str(manifest), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "1 task(s)" in res.output and "clip s2: candidates" in res.output
    (task,) = json.loads((tmp_path / "o" / "tasks.json").read_text())
    assert task["data"]["video"] == str((tmp_path / "synthetic.mp4").resolve())
    assert "predictions" not in task  # no OCR subtitles: nothing to prefill
