"""Reading Label Studio exports: every malformed task/annotation is reported with its id and field,
the valid ones are kept, and majority adjudication writes the final manifest (synthetic clips)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perr.annotate import schema
from perr.annotate.importer import import_annotations, majority
from perr.annotate.records import load_users, parse_export, read_export
from perr.cli import app
from perr.manifest import Character, Clip, SubtitleEvent, load_manifest, write_manifest


def choices(name: str, *values: str) -> dict:
    return {"from_name": name, "to_name": "video", "type": "choices", "value": {"choices": list(values)}}


def text(name: str, *lines: str) -> dict:
    return {"from_name": name, "to_name": "video", "type": "textarea", "value": {"text": list(lines)}}


def annotation(aid: int, who, result, t: str = "2024-03-04T10:00:00Z", cancelled: bool = False) -> dict:
    return {"id": aid, "completed_by": who, "result": result, "was_cancelled": cancelled, "created_at": t}


def task(tid: int, clip_id: str | None, anns: list, candidates=("a", "b", "c")) -> dict:
    data = {"candidates": list(candidates)}
    if clip_id is not None:
        data["clip_id"] = clip_id
    return {"id": tid, "data": data, "annotations": anns}


def good(label: str, pair: str = "ab") -> list[dict]:
    return [choices(schema.PAIR, *pair), choices(schema.LABEL, label)]


def test_subtitle_line_round_trip() -> None:
    ev = SubtitleEvent(start=12.3, end=14.856, text="你好 [sic] - ok")
    line = schema.format_subtitle_line(ev)
    assert line == "[12.30-14.86] 你好 [sic] - ok"
    back = schema.parse_subtitle_line(line)
    assert (back.start, back.end, back.text) == (12.3, 14.86, "你好 [sic] - ok")
    for bad in ("no times here", "[3.0-2.0] reversed", "[1.0-2.0]   "):
        with pytest.raises(ValueError):
            schema.parse_subtitle_line(bad)


def test_malformed_tasks_are_reported_and_valid_ones_kept() -> None:
    export = [
        task(1, "c1", [annotation(11, 1, good("mild")), annotation(12, 2, good("mild"))]),
        task(2, None, [annotation(21, 1, good("mild"))]),  # no clip_id
        {"id": 3, "data": {"clip_id": "c3"}},  # no annotations list
        task(
            4,
            "c4",
            [
                annotation(
                    41, 1, [choices(schema.PAIR, "a"), choices(schema.LABEL, "mild")]
                ),  # one character
                annotation(
                    42, 2, [choices(schema.PAIR, "a", "z"), choices(schema.LABEL, "mild")]
                ),  # not a candidate
                annotation(
                    43, 3, [choices(schema.PAIR, "a", "b"), choices(schema.LABEL, "happy")]
                ),  # unknown label
                annotation(44, 4, [choices(schema.PAIR, "a", "b")]),  # no label, not discarded
                annotation(45, None, good("tense")),  # no annotator
                annotation(46, 6, [*good("tense"), text(schema.SUBTITLES, "no timing")]),  # bad subtitle line
                annotation(47, 7, good("tense"), t="yesterday"),  # bad timestamp
                annotation(48, 8, "not a list"),
                annotation(49, 9, good("tense")),  # the one valid annotation of task 4
            ],
        ),
        task(5, "c5", [annotation(51, 1, [], cancelled=True)]),  # skipped only: incomplete
        "garbage",
    ]
    parsed = parse_export(export)
    found = sorted((p.task_id, p.annotation_id, p.field) for p in parsed.problems)
    assert found == sorted(
        [
            ("2", None, "data.clip_id"),
            ("3", None, "annotations"),
            ("4", "41", "pair"),
            ("4", "42", "pair"),
            ("4", "43", "label"),
            ("4", "44", "label"),
            ("4", "45", "completed_by"),
            ("4", "46", "subtitles"),
            ("4", "47", "created_at"),
            ("4", "48", "result"),
            ("5", None, "annotations"),
            ("#6", None, "<task>"),
        ]
    )
    assert parsed.n_tasks == 6 and parsed.n_cancelled == 1
    by_task = {t.task_id: t for t in parsed.tasks}
    assert [v.label for v in by_task["1"].votes] == ["mild", "mild"]
    assert [(v.annotator, v.label, v.pair) for v in by_task["4"].votes] == [("9", "tense", ("a", "b"))]
    assert "task 4 annotation 42: pair:" in str(next(p for p in parsed.problems if p.annotation_id == "42"))


def test_completed_by_object_and_duplicate_annotator() -> None:
    export = [
        task(
            1,
            "c1",
            [
                annotation(1, {"id": 7, "email": "x@y"}, good("tense"), t="2024-03-04T10:00:00Z"),
                annotation(2, 7, good("hostile"), t="2024-03-04T11:00:00Z"),
            ],
        )
    ]
    parsed = parse_export(export)
    assert [(v.annotator, v.label) for v in parsed.tasks[0].votes] == [("7", "hostile")]
    assert [(p.annotation_id, p.field) for p in parsed.problems] == [("1", "completed_by")]


def test_export_must_be_a_task_list(tmp_path: Path) -> None:
    p = tmp_path / "min.json"
    p.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="JSON_MIN"):
        read_export(p)
    p.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_export(p)


def test_majority() -> None:
    assert majority(["a", "b", "a"])[0] == "a"
    assert majority(["a", "b"])[0] is None
    assert majority(["a", "b", "b", "a", "c"])[0] is None
    assert majority([])[0] is None


def synthetic_manifest(tmp_path: Path, n: int = 6) -> Path:
    clips = [
        Clip(
            clip_id=f"c{i}",
            video="synthetic.mp4",
            start=0.0,
            end=5.0,
            characters=[Character(id=x) for x in "abc"],
            candidates=["a", "b", "c"],
            subtitles=[SubtitleEvent(start=1.0, end=2.0, text=f"ocr {i}")],
            status="proposal",
        )
        for i in range(1, n + 1)
    ]
    return write_manifest(tmp_path / "synthetic_proposals.jsonl", clips)


def test_adjudication_writes_final_manifest(tmp_path: Path) -> None:
    manifest = synthetic_manifest(tmp_path)
    sub = lambda s: [text(schema.SUBTITLES, f"[1.00-2.00] {s}")]  # noqa: E731
    export = [
        # majority label; subtitles from the first agreeing annotator (2), not the earlier dissenter (1)
        task(
            1,
            "c1",
            [
                annotation(1, 1, good("hostile") + sub("one"), t="2024-03-04T10:00:00Z"),
                annotation(2, 2, good("tense") + sub("two"), t="2024-03-04T10:01:00Z"),
                annotation(3, 3, good("tense", "ba") + sub("three"), t="2024-03-04T10:02:00Z"),
            ],
        ),
        # label tie → review, label empty; pair agreed
        task(2, "c2", [annotation(4, 1, good("mild")), annotation(5, 2, good("intimate"))]),
        # pair tie → review, pair empty
        task(3, "c3", [annotation(6, 1, good("neutral", "ab")), annotation(7, 2, good("neutral", "bc"))]),
        # discard majority
        task(
            4,
            "c4",
            [
                annotation(
                    8, 1, [choices(schema.DISCARD, "discard"), text(schema.DISCARD_REASON, "no salient pair")]
                ),
                annotation(9, 2, [choices(schema.DISCARD, "discard")]),
                annotation(10, 3, good("neutral")),
            ],
        ),
        # unknown clip
        task(5, "zz", [annotation(11, 1, good("neutral"))]),
        # one textarea entry holding several lines becomes one event per line
        task(
            6,
            "c6",
            [annotation(12, 1, [*good("neutral"), text(schema.SUBTITLES, "[1.00-2.00] a\n[2.00-3.00] b")])],
        ),
    ]
    ex = tmp_path / "export.json"
    ex.write_text(json.dumps(export))
    out = tmp_path / "final.jsonl"
    rep = import_annotations(ex, manifest, out)
    final = {c.clip_id: c for c in load_manifest(out)}
    c1 = final["c1"]
    assert (c1.status, c1.label, c1.pair) == ("annotated", "tense", ("a", "b"))
    assert [s.text for s in c1.subtitles] == ["two"]
    assert c1.extra["annotation"]["subtitles_from"] == "2"
    assert (final["c2"].status, final["c2"].label, final["c2"].pair) == ("review", None, ("a", "b"))
    assert final["c2"].notes == "label tie: mild 1, intimate 1"
    assert (final["c3"].status, final["c3"].label, final["c3"].pair) == ("review", "neutral", None)
    assert "pair tie" in final["c3"].notes
    assert (final["c4"].status, final["c4"].label) == ("discarded", None)
    assert final["c4"].notes == "discarded by 2/3: no salient pair"
    assert [(s.start, s.end, s.text) for s in final["c6"].subtitles] == [(1.0, 2.0, "a"), (2.0, 3.0, "b")]
    assert (final["c5"].status, final["c5"].subtitles[0].text) == ("proposal", "ocr 5")  # untouched
    assert [(p.task_id, p.field) for p in rep.problems] == [("5", "data.clip_id")]
    assert dict(rep.status) == {"annotated": 2, "review": 2, "discarded": 1}


def test_cli_import_reports_problems(tmp_path: Path) -> None:
    manifest = synthetic_manifest(tmp_path, 2)
    ex = tmp_path / "export.json"
    ex.write_text(
        json.dumps(
            [
                task(1, "c1", [annotation(1, 1, good("mild"))]),
                task(
                    2,
                    "c2",
                    [annotation(2, 1, [choices(schema.PAIR, "a", "b", "c"), choices(schema.LABEL, "mild")])],
                ),
            ]
        )
    )
    out = tmp_path / "final.jsonl"
    res = CliRunner().invoke(
        app, ["annotate", "import", str(ex), "--manifest", str(manifest), "--out", str(out)]
    )
    assert res.exit_code == 1, res.output  # one annotation unusable: named, the rest imported
    assert "task 2 annotation 2: pair: pick exactly two characters, got 3" in res.output
    assert [c.status for c in load_manifest(out)] == ["annotated", "proposal"]


def test_load_users(tmp_path: Path) -> None:
    p = tmp_path / "users.json"
    p.write_text(json.dumps([{"id": 1, "username": "", "email": "a@x"}, {"id": 2, "username": "bob"}]))
    assert load_users(p) == {"1": "a@x", "2": "bob"}
    p.write_text(json.dumps({"3": "carol"}))
    assert load_users(p) == {"3": "carol"}
    assert load_users(None) == {}
