"""The figures of `benchmarks.characters`: how well a build finds the people of labelled shots, keeps one
identity per person across shots, cuts scenes and proposes pairs. Pure Python (and scipy's Hungarian
algorithm): the labels come from `benchmarks/devsets/characters/labels.json`, what the build found from
its cast file (`characters/<video>.json`), `segments/<video>.json`, `clips/<video>.jsonl` and
`done/<video>.json` (:func:`read_build`, the one place that knows the build's layout).

Matching. In each labelled shot, every found track that has boxes inside the shot gives one *segment*
(its boxes in the shot). A segment can stand for a labelled person when the person's labelled point (the
face centre, linearly interpolated between keyframes) lies within `gate` (a fraction of the frame) of the
segment's box, at the median over the segment's boxes, and, for a face track and a labelled face, the
box's centre lies within half a labelled face height (at least 0.05 of the frame diagonal) of the point. The Hungarian algorithm assigns segments to the
shot's labelled people and non-person faces one to one, nearest first; a further segment of a person
already assigned (a track cut in two) counts as a *duplicate* of that person: it counts for recall and
for identity, never as a false character.

Figures (each also per video; people in shots shorter than `min_shot`, which may hold no sampled frame,
are not counted):
- face recall at < 40 px and >= 40 px: labelled faces (face yes/profile, not optional) whose person got
  a segment with a face (track kind face or face+body);
- people recall: labelled people (not optional, any view) who got any segment;
- false characters: cast characters none of whose segments matched a labelled person (optional ones
  included), and how many of those sit on a labelled non-person face (screen, poster, animal); a
  character seen only inside a shot's labelled ``ignore`` regions (an out-of-focus audience, a crowd:
  real people too many or too dim to label one by one) is neither false nor matched
  (``characters_ignored``);
- identity B-cubed precision / recall over the matched segments: gold = labelled person, predicted = the
  cast character (a track with no character is its own cluster), pooled over videos;
- scene boundaries: found segment starts (not the first) within `tolerance` s of a labelled scene start
  (not the first), one to one, nearest first; precision and recall pooled over the videos whose scenes
  are labelled;
- pair recall: labelled scenes with a pair whose span holds, for at least half of a clip's length, a clip
  with two or more candidates ("any"), and whose candidates include characters matched to both people
  of the labelled pair ("identified");
- ms per sampled frame: `stage_seconds["faces"]` over `counts["sampled_frames"]` of `done/<video>.json`
  (and every stage's seconds over the same frames, to see what else a setting costs).
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SMALL_FACE = 40.0  # px: faces below are "small"
GATE = 0.06  # fraction of the frame between a labelled point and a box that still matches
CENTRE = 0.5  # labelled face heights between a face box's centre and the labelled face centre...
CENTRE_FLOOR = 0.05  # ...or this fraction of the frame diagonal, whichever is larger
TOLERANCE = 0.5  # s: a found scene boundary this near a labelled one matches it
MIN_SHOT = 0.4  # s: shorter shots may hold no sampled frame (3 a second): their people are not counted
FACE_VIEWS = ("yes", "profile")
_INFEASIBLE = 1e6


# ---------------------------------------------------------------------------------------------- labels


def point_at(at: Sequence[Sequence[float]], t: float) -> tuple[float, float]:
    """(x, y) at time t from [t, x, y] keyframes: linear between them, constant outside them."""
    at = sorted(at)
    if t <= at[0][0]:
        return at[0][1], at[0][2]
    for (t0, x0, y0), (t1, x1, y1) in itertools.pairwise(at):
        if t <= t1:
            w = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
            return x0 + w * (x1 - x0), y0 + w * (y1 - y0)
    return at[-1][1], at[-1][2]


@dataclass
class Person:
    """A labelled person (or, with ``id`` None, a non-person face) in one shot."""

    id: str | None
    face: str
    face_px: float | None
    at: list[tuple[float, float, float]]
    optional: bool = False
    what: str | None = None  # non-person faces: what it is

    def point(self, t: float) -> tuple[float, float]:
        """Labelled (x, y) at time t: linear between keyframes, constant outside them."""
        return point_at(self.at, t)

    @property
    def has_face(self) -> bool:
        return self.face in FACE_VIEWS


@dataclass
class Shot:
    index: int
    start: float
    end: float
    people: list[Person] = field(default_factory=list)
    non_person: list[Person] = field(default_factory=list)
    ignore: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0, y0, x1, y1 in [0, 1]


@dataclass
class Scene:
    shots: list[int]
    start: float
    end: float
    pair: tuple[str, str] | None  # None: no pair expected
    scored: bool = True  # False: pair "unscored"


@dataclass
class LabelledVideo:
    key: str
    path: str
    width: int
    height: int
    shots: list[Shot]
    scenes: list[Scene]
    scenes_labelled: bool = True
    derived_from: str | None = None

    def boundaries(self) -> list[float]:
        """Labelled scene starts after the first."""
        return [s.start for s in self.scenes[1:]]


def _person(d: Mapping[str, Any], non_person: bool = False) -> Person:
    return Person(
        id=None if non_person else d["id"],
        face=d.get("face", "yes" if non_person else "no"),
        face_px=d.get("face_px"),
        at=[(float(t), float(x), float(y)) for t, x, y in d["at"]],
        optional=bool(d.get("optional", False)),
        what=d.get("what") or d.get("kind"),
    )


def parse_video(d: Mapping[str, Any]) -> LabelledVideo:
    shots = [
        Shot(
            i,
            float(s["start"]),
            float(s["end"]),
            [_person(p) for p in s.get("people", [])],
            [_person(p, non_person=True) for p in s.get("non_person", [])],
            [tuple(float(v) for v in r["box"]) for r in s.get("ignore", [])],
        )
        for i, s in enumerate(d["shots"])
    ]
    scenes = []
    for sc in d.get("scenes", []):
        pair = sc.get("pair")
        scored = pair != "unscored"
        scenes.append(
            Scene(
                list(sc["shots"]),
                shots[sc["shots"][0]].start,
                shots[sc["shots"][-1]].end,
                tuple(pair) if isinstance(pair, list | tuple) else None,
                scored,
            )
        )
    return LabelledVideo(
        key=d["key"],
        path=d["path"],
        width=int(d["width"]),
        height=int(d["height"]),
        shots=shots,
        scenes=scenes,
        scenes_labelled=bool(d.get("scenes_labelled", True)),
        derived_from=d.get("derived_from"),
    )


def load_labels(path_or_dict: str | Path | Mapping[str, Any]) -> list[LabelledVideo]:
    d = path_or_dict if isinstance(path_or_dict, Mapping) else json.loads(Path(path_or_dict).read_text())
    return [parse_video(v) for v in d["videos"]]


# ----------------------------------------------------------------------------------------- build output


@dataclass
class FoundTrack:
    id: int
    character: str | None
    kind: str  # face | body | face+body
    boxes: list[tuple[float, float, float, float, float]]  # t, x0, y0, x1, y1 in source px

    @property
    def has_face(self) -> bool:
        return "face" in self.kind


@dataclass
class FoundClip:
    clip_id: str
    start: float
    end: float
    candidates: list[str]


@dataclass
class FoundVideo:
    key: str
    tracks: list[FoundTrack]
    characters: list[str]
    segments: list[tuple[float, float]] | None
    clips: list[FoundClip]
    stage_seconds: dict[str, float] = field(default_factory=dict)
    sampled_frames: int = 0

    def boundaries(self) -> list[float] | None:
        if self.segments is None:
            return None
        return [s for s, _ in sorted(self.segments)[1:]]


def read_build(out: str | Path, key: str) -> FoundVideo:
    """What `perr build` wrote for one video (the cast file and segments of issue 33's layout)."""
    out = Path(out)
    cast = json.loads((out / "characters" / f"{key}.json").read_text())
    tracks = [
        FoundTrack(
            int(t["id"]),
            t.get("character"),
            t.get("kind", "face"),
            [tuple(float(v) for v in b) for b in t.get("boxes", [])],
        )
        for t in cast.get("tracks", [])
    ]
    seg_path = out / "segments" / f"{key}.json"
    segments = None
    if seg_path.exists():
        segments = [(float(s["start"]), float(s["end"])) for s in json.loads(seg_path.read_text())]
    clips = []
    clips_path = out / "clips" / f"{key}.jsonl"
    if clips_path.exists():
        for line in clips_path.read_text().splitlines():
            if line.strip():
                c = json.loads(line)
                clips.append(
                    FoundClip(
                        c["clip_id"],
                        float(c.get("start", 0.0)),
                        float(c["end"]),
                        list(c.get("candidates", [])),
                    )
                )
    done_path = out / "done" / f"{key}.json"
    done = json.loads(done_path.read_text()) if done_path.exists() else {}
    return FoundVideo(
        key=key,
        tracks=tracks,
        characters=[c["id"] for c in cast.get("characters", [])],
        segments=segments,
        clips=clips,
        stage_seconds=dict(done.get("stage_seconds", {})),
        sampled_frames=int(done.get("counts", {}).get("sampled_frames", 0)),
    )


# ------------------------------------------------------------------------------------------- matching


@dataclass
class Segment:
    """The boxes of one found track inside one labelled shot."""

    track: FoundTrack
    shot: int
    boxes: list[tuple[float, float, float, float, float]]


@dataclass
class Match:
    segment: Segment
    person: Person
    primary: bool  # False: a duplicate (second segment of an already assigned person)


@dataclass
class VideoMatch:
    labels: LabelledVideo
    found: FoundVideo
    people: list[Match]  # segments matched to labelled people
    non_person: list[Match]  # segments matched to labelled non-person faces
    unmatched: list[Segment]
    ignored: list[Segment] = field(default_factory=list)  # unmatched, inside a labelled ignore region


def point_box_distance(px: float, py: float, box: Sequence[float]) -> float:
    """Distance from a point to an axis-aligned box (0 inside), in the units of the arguments."""
    x0, y0, x1, y1 = box
    dx = max(x0 - px, 0.0, px - x1)
    dy = max(y0 - py, 0.0, py - y1)
    return math.hypot(dx, dy)


def segment_cost(seg: Segment, person: Person, width: int, height: int, gate: float = GATE) -> float:
    """Median over the segment's boxes of the point-to-box distance (fractions of the frame), plus a
    tenth of the centre distance to break ties; `_INFEASIBLE` when the median distance exceeds `gate`,
    or, for a face track and a labelled face, when the median distance from the box centre to the
    labelled point exceeds the larger of `CENTRE` labelled face heights and `CENTRE_FLOOR` of the frame
    diagonal (a large box beside a face, on a lamp or the back of a head, is not that face)."""
    near, centre, centre_px = [], [], []
    for t, x0, y0, x1, y1 in seg.boxes:
        px, py = person.point(t)
        box = (x0 / width, y0 / height, x1 / width, y1 / height)
        near.append(point_box_distance(px, py, box))
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        centre.append(math.hypot(cx - px, cy - py))
        centre_px.append(math.hypot((cx - px) * width, (cy - py) * height))
    d = statistics.median(near)
    if d > gate:
        return _INFEASIBLE
    if seg.track.kind == "face" and person.face_px:
        limit = max(CENTRE * person.face_px, CENTRE_FLOOR * math.hypot(width, height))
        if statistics.median(centre_px) > limit:
            return _INFEASIBLE
    return d + 0.1 * statistics.median(centre)


def shot_segments(tracks: Iterable[FoundTrack], shot: Shot) -> list[Segment]:
    out = []
    for tr in tracks:
        boxes = [b for b in tr.boxes if shot.start <= b[0] < shot.end]
        if boxes:
            out.append(Segment(tr, shot.index, boxes))
    return out


def match_shot(
    segments: list[Segment], shot: Shot, width: int, height: int, gate: float = GATE
) -> tuple[list[Match], list[Match], list[Segment]]:
    """(people matches, non-person matches, unmatched segments) of one shot: see the module doc."""
    from scipy.optimize import linear_sum_assignment

    targets = [*shot.people, *shot.non_person]
    if not segments:
        return [], [], []
    if not targets:
        return [], [], list(segments)
    cost = [[segment_cost(s, p, width, height, gate) for p in targets] for s in segments]
    rows, cols = linear_sum_assignment(cost)
    people: list[Match] = []
    nonp: list[Match] = []
    taken = set()
    for r, c in zip(rows, cols, strict=True):
        if cost[r][c] >= _INFEASIBLE:
            continue
        taken.add(r)
        m = Match(segments[r], targets[c], True)
        (people if targets[c].id is not None else nonp).append(m)
    unmatched = []
    for r, seg in enumerate(segments):
        if r in taken:
            continue
        best = min(range(len(targets)), key=lambda c: cost[r][c])
        if cost[r][best] >= _INFEASIBLE:
            unmatched.append(seg)
            continue
        m = Match(seg, targets[best], False)
        (people if targets[best].id is not None else nonp).append(m)
    return people, nonp, unmatched


def in_region(seg: Segment, regions: Sequence[Sequence[float]], width: int, height: int) -> bool:
    """Whether the segment's median box centre lies inside one of the regions (fractions of the frame)."""
    if not regions:
        return False
    cx = statistics.median((b[1] + b[3]) / 2 / width for b in seg.boxes)
    cy = statistics.median((b[2] + b[4]) / 2 / height for b in seg.boxes)
    return any(x0 <= cx <= x1 and y0 <= cy <= y1 for x0, y0, x1, y1 in regions)


def match_video(labels: LabelledVideo, found: FoundVideo, gate: float = GATE) -> VideoMatch:
    people, nonp, unmatched, ignored = [], [], [], []
    for shot in labels.shots:
        p, n, u = match_shot(shot_segments(found.tracks, shot), shot, labels.width, labels.height, gate)
        people += p
        nonp += n
        for seg in u:
            (ignored if in_region(seg, shot.ignore, labels.width, labels.height) else unmatched).append(seg)
    return VideoMatch(labels, found, people, nonp, unmatched, ignored)


# --------------------------------------------------------------------------------------------- figures


def ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def b_cubed(gold: Sequence[Any], pred: Sequence[Any]) -> tuple[float | None, float | None]:
    """B-cubed precision and recall of a clustering `pred` against `gold` (one label per item)."""
    n = len(gold)
    if n == 0:
        return None, None
    both = Counter(zip(gold, pred, strict=True))
    g, p = Counter(gold), Counter(pred)
    prec = sum(both[(gi, pi)] / p[pi] for gi, pi in zip(gold, pred, strict=True)) / n
    rec = sum(both[(gi, pi)] / g[gi] for gi, pi in zip(gold, pred, strict=True)) / n
    return prec, rec


def match_boundaries(found: Sequence[float], labelled: Sequence[float], tolerance: float = TOLERANCE) -> int:
    """How many found boundaries pair one to one with labelled ones within `tolerance` (nearest first)."""
    pairs = sorted(
        (abs(f - g), i, j)
        for i, f in enumerate(found)
        for j, g in enumerate(labelled)
        if abs(f - g) <= tolerance
    )
    used_f, used_g, n = set(), set(), 0
    for _, i, j in pairs:
        if i not in used_f and j not in used_g:
            used_f.add(i)
            used_g.add(j)
            n += 1
    return n


def _predicted(track: FoundTrack) -> str:
    return track.character if track.character is not None else f"track:{track.id}"


def character_people(vm: VideoMatch) -> dict[str, str]:
    """Cast character → the labelled person most of its matched segments are (ties: first seen)."""
    votes: dict[str, Counter] = defaultdict(Counter)
    for m in vm.people:
        if m.segment.track.character is not None:
            votes[m.segment.track.character][m.person.id] += 1
    return {c: v.most_common(1)[0][0] for c, v in votes.items()}


def video_counts(vm: VideoMatch, tolerance: float = TOLERANCE, min_shot: float = MIN_SHOT) -> dict[str, Any]:
    """The raw counts of one video (summed over videos by :func:`summarize`)."""
    lab = vm.labels
    by_person: dict[tuple[int, str], list[Match]] = defaultdict(list)
    for m in vm.people:
        by_person[(m.segment.shot, m.person.id)].append(m)
    c: dict[str, Any] = Counter()
    for shot in lab.shots:
        if shot.end - shot.start < min_shot:
            c["shots_too_short"] += 1
            continue
        for p in shot.people:
            if p.optional:
                continue
            got = by_person.get((shot.index, p.id), [])
            c["people"] += 1
            c["people_found"] += bool(got)
            if p.has_face and p.face_px is not None:
                size = "small" if p.face_px < SMALL_FACE else "large"
                c[f"faces_{size}"] += 1
                c[f"faces_{size}_found"] += any(m.segment.track.has_face for m in got)
    # characters
    matched_chars = {m.segment.track.character for m in vm.people}
    nonperson_chars = {m.segment.track.character for m in vm.non_person}
    counted_chars = nonperson_chars | {s.track.character for s in vm.unmatched}
    unmatched = [ch for ch in vm.found.characters if ch not in matched_chars]
    false = [ch for ch in unmatched if ch in counted_chars]  # not only inside ignore regions
    c["characters"] = len(vm.found.characters)
    c["characters_ignored"] = len(unmatched) - len(false)
    c["false_characters"] = len(false)
    c["false_characters_nonperson"] = sum(ch in nonperson_chars for ch in false)
    c["labelled_identities"] = len({p.id for s in lab.shots for p in s.people})
    # scenes
    fb = vm.found.boundaries()
    if lab.scenes_labelled and fb is not None:
        lb = lab.boundaries()
        c["boundaries_labelled"] = len(lb)
        c["boundaries_found"] = len(fb)
        c["boundaries_matched"] = match_boundaries(fb, lb, tolerance)
    # pairs
    who = character_people(vm)
    for sc in lab.scenes:
        if not sc.scored or sc.pair is None:
            continue
        c["pair_scenes"] += 1
        any_pair = identified = False
        for clip in vm.found.clips:
            length = clip.end - clip.start
            overlap = min(clip.end, sc.end) - max(clip.start, sc.start)
            if length <= 0 or overlap < 0.5 * length or len(clip.candidates) < 2:
                continue
            any_pair = True
            if set(sc.pair) <= {who.get(ch) for ch in clip.candidates}:
                identified = True
        c["pair_scenes_any"] += any_pair
        c["pair_scenes_identified"] += identified
    c["faces_seconds"] = vm.found.stage_seconds.get("faces", 0.0)
    for stage, sec in vm.found.stage_seconds.items():
        c[f"stage_seconds.{stage}"] = sec
    c["sampled_frames"] = vm.found.sampled_frames
    return dict(c)


def identity_items(vm: VideoMatch) -> tuple[list[str], list[str]]:
    """(gold, predicted) of every matched segment, prefixed with the video key."""
    k = vm.labels.key
    gold = [f"{k}/{m.person.id}" for m in vm.people]
    pred = [f"{k}/{_predicted(m.segment.track)}" for m in vm.people]
    return gold, pred


def figures(counts: Mapping[str, Any], gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    """The reported figures from summed counts and the identity items."""
    prec, rec = b_cubed(gold, pred)
    f = {
        "face_recall_small": ratio(counts.get("faces_small_found", 0), counts.get("faces_small", 0)),
        "face_recall_large": ratio(counts.get("faces_large_found", 0), counts.get("faces_large", 0)),
        "people_recall": ratio(counts.get("people_found", 0), counts.get("people", 0)),
        "false_characters": counts.get("false_characters", 0),
        "false_characters_nonperson": counts.get("false_characters_nonperson", 0),
        "identity_bcubed_precision": None if prec is None else round(prec, 4),
        "identity_bcubed_recall": None if rec is None else round(rec, 4),
        "scene_boundary_precision": ratio(
            counts.get("boundaries_matched", 0), counts.get("boundaries_found", 0)
        ),
        "scene_boundary_recall": ratio(
            counts.get("boundaries_matched", 0), counts.get("boundaries_labelled", 0)
        ),
        "pair_recall": ratio(counts.get("pair_scenes_any", 0), counts.get("pair_scenes", 0)),
        "pair_recall_identified": ratio(
            counts.get("pair_scenes_identified", 0), counts.get("pair_scenes", 0)
        ),
        "ms_per_sampled_frame": (
            round(1000 * counts["faces_seconds"] / counts["sampled_frames"], 2)
            if counts.get("sampled_frames")
            else None
        ),
        "ms_per_sampled_frame_by_stage": {
            k.split(".", 1)[1]: round(1000 * v / counts["sampled_frames"], 2)
            for k, v in counts.items()
            if k.startswith("stage_seconds.") and counts.get("sampled_frames")
        },
    }
    return f


def summarize(
    matches: Sequence[VideoMatch], tolerance: float = TOLERANCE, min_shot: float = MIN_SHOT
) -> dict[str, Any]:
    """Figures over all videos and per video, with the counts behind them."""
    total: Counter = Counter()
    gold_all: list[str] = []
    pred_all: list[str] = []
    per_video = {}
    for vm in matches:
        c = video_counts(vm, tolerance, min_shot)
        g, p = identity_items(vm)
        gold_all += g
        pred_all += p
        total.update(c)
        per_video[vm.labels.key] = {**figures(c, g, p), "counts": c}
    return {**figures(total, gold_all, pred_all), "counts": dict(total), "videos": per_video}
