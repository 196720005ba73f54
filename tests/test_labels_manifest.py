import json

import pytest

from perr import labels
from perr.manifest import Clip, ManifestError, load_manifest, parse_manifest, write_manifest


def test_fine_to_coarse_mapping_is_the_papers():
    assert [labels.to_coarse(c) for c in labels.FINE] == [
        "negative",
        "negative",
        "positive",
        "positive",
        "neutral",
    ]
    assert set(labels.FINE_TO_COARSE.values()) == set(labels.COARSE)
    with pytest.raises(KeyError, match="unknown fine label 'happy'"):
        labels.to_coarse("happy")


def test_tasks_encode_both_scales():
    tasks = labels.perr_tasks()
    assert tasks["5"].encode(["hostile", "neutral"]) == [0, 4]
    assert tasks["3"].encode(["hostile", "intimate", "neutral"]) == [0, 1, 2]
    assert abs(sum(labels.erato_ratios().values()) - 1) < 1e-9
    assert round(labels.erato_ratios()["neutral"], 4) == 0.5931  # Table 2: 59.31%


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")


def test_manifest_round_trip(tmp_path):
    clip = Clip(
        clip_id="c1",
        video="v.mp4",
        start=1.0,
        end=8.5,
        label="mild",
        characters=[
            {"id": "a", "spans": [{"start": 1, "end": 3}], "occurrences": 4},
            {"id": "b", "spans": [{"start": 2, "end": 8}], "occurrences": 9},
        ],
        pair=("a", "b"),
        subtitles=[{"start": 1.5, "end": 2.5, "text": "你好 hello"}],
    )
    p = write_manifest(tmp_path / "m.jsonl", [clip])
    (back,) = load_manifest(p)
    assert back == clip
    assert back.character("b").seconds_on_screen == 6


def test_manifest_lists_every_bad_row_and_field(tmp_path):
    (tmp_path / "ok.mp4").write_bytes(b"x")
    _write(
        tmp_path / "m.jsonl",
        [
            {"clip_id": "ok", "video": "ok.mp4", "label": "tense"},
            {"clip_id": "bad-label", "video": "ok.mp4", "label": "happy"},
            {"clip_id": "ok", "video": "ok.mp4"},
            "{not json",
            {"clip_id": "missing", "video": "nowhere.mp4"},
            {"clip_id": "times", "video": "ok.mp4", "start": 5, "end": 2},
        ],
    )
    clips, errors = parse_manifest(tmp_path / "m.jsonl", check_files=True)
    text = "\n".join(map(str, errors))
    assert [c.clip_id for c in clips] == ["ok", "missing"]
    assert "row 2 (clip bad-label): label" in text and "unknown label 'happy'" in text
    assert "row 3 (clip ok): clip_id: duplicate clip id (first seen in row 1)" in text
    assert "row 4: <json>" in text
    assert "row 5 (clip missing): video: file not found" in text
    assert "row 6 (clip times)" in text
    with pytest.raises(ManifestError, match="5 problem"):
        load_manifest(tmp_path / "m.jsonl", check_files=True)
