"""Dataset statistics of paper §3.3 and the pair rule, on manifests whose numbers are known by construction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan, write_manifest
from perr.report.dataset import dataset_stats
from perr.stats import compute_stats, pair_timing, subtitle_ratio


def _clip(
    cid: str,
    a: list[tuple[float, float]],
    b: list[tuple[float, float]],
    subs: list[tuple[float, float]],
    label: str | None = None,
    n_shots: int = 2,
) -> Clip:
    return Clip(
        clip_id=cid,
        video="v.mp4",
        start=0.0,
        end=20.0,
        shots=[TimeSpan(start=i * 20 / n_shots, end=(i + 1) * 20 / n_shots) for i in range(n_shots)],
        characters=[
            Character(id="A", spans=[TimeSpan(start=s, end=e) for s, e in a], occurrences=5),
            Character(id="B", spans=[TimeSpan(start=s, end=e) for s, e in b], occurrences=3),
        ],
        candidates=["A", "B"],
        subtitles=[SubtitleEvent(start=s, end=e, text="x") for s, e in subs],
        label=label,
    )


KNOWN = [  # (clip, appearance ratio, IoM mode, subtitle ratio)
    (_clip("alt", [(0, 10)], [(10, 15)], [(0, 5), (4, 10)], "tense", 2), 0.5, "IoM=0", 0.5),
    (_clip("part", [(0, 10)], [(5, 15)], [], "neutral", 3), 1.0, "0<IoM<1", 0.0),
    (_clip("incl", [(0, 20)], [(2, 4), (6, 8)], [(0, 20)], "neutral", 1), 0.2, "IoM=1", 1.0),
]


@pytest.mark.parametrize("clip, ratio, mode, sub", KNOWN, ids=[k[0].clip_id for k in KNOWN])
def test_pair_timing_by_construction(clip: Clip, ratio: float, mode: str, sub: float) -> None:
    t = pair_timing(clip)
    assert t is not None and t.appearance_ratio == pytest.approx(ratio) and t.mode == mode
    assert subtitle_ratio(clip) == pytest.approx(sub)


def test_stats_json_and_figures(tmp_path: Path) -> None:
    clips = [k[0] for k in KNOWN]
    clips[1] = clips[1].model_copy(update={"pair": ("B", "A")})
    write_manifest(tmp_path / "m.jsonl", clips)
    s = dataset_stats(tmp_path / "m.jsonl", tmp_path / "stats")
    assert s["n_clips"] == 3 and s["duration"]["mean"] == 20.0
    assert s["shots_per_clip"]["mean"] == pytest.approx(2.0)
    assert s["interaction_mode"]["counts"] == {"IoM=0": 1, "0<IoM<1": 1, "IoM=1": 1}
    assert s["appearance_ratio"]["mean"] == pytest.approx((0.5 + 1.0 + 0.2) / 3)
    assert s["subtitle_ratio"]["no_subtitle_share"] == pytest.approx(1 / 3)
    assert s["classes"]["fine"]["neutral"] == {"count": 2, "ratio": pytest.approx(2 / 3)}
    assert s["classes"]["coarse"]["negative"]["count"] == 1
    on_disk = json.loads((tmp_path / "stats" / "stats.json").read_text())
    assert on_disk["interaction_mode"] == s["interaction_mode"]
    assert sorted(p.name for p in (tmp_path / "stats").glob("*.png")) == [
        "fig2_statistics.png",
        "fig3_interaction_modes.png",
    ]


def test_compute_stats_of_unlabelled_proposals_has_no_class_table() -> None:
    s = compute_stats([KNOWN[0][0].model_copy(update={"label": None})])
    assert s["classes"] is None and s["n_clips"] == 1


def _people(*occurrences: int) -> list[Character]:
    return [Character(id=f"c{i + 1}", occurrences=n) for i, n in enumerate(occurrences)]


@pytest.mark.parametrize(
    "fields, pair",
    [
        ({"pair": ("c3", "c1"), "candidates": ["c1", "c2"]}, ("c3", "c1")),  # the annotated pair wins
        ({"candidates": ["c2", "c3", "c1"]}, ("c2", "c3")),  # else the top candidates, in their order
        ({"candidates": ["c3"]}, ("c3", "c1")),  # one candidate: the other role by occurrences
        ({}, ("c1", "c2")),  # no candidates: the two seen most often
    ],
)
def test_one_pair_rule_for_every_stage(fields: dict, pair: tuple[str, str]) -> None:
    clip = Clip(clip_id="x", video="v.mp4", start=0, end=10, characters=_people(9, 5, 2), **fields)
    assert clip.pair_ids() == pair


def test_pair_rule_leaves_roles_empty_when_characters_are_missing() -> None:
    assert Clip(clip_id="x", video="v.mp4", characters=_people(4)).pair_ids() == ("c1", None)
    assert Clip(clip_id="x", video="v.mp4").pair_ids() == (None, None)
    lone = Clip(clip_id="x", video="v.mp4", start=0, end=10, characters=_people(4), candidates=["c1"])
    assert pair_timing(lone) is None  # statistics need both
