"""Clip proposals: the characters of each clip window, the pair candidates and their thumbnails.

Input is what the sampled pass produced for one video (its cast: person tracks grouped into people,
subtitle cues) and the segment → windows plan; output is one ``Clip`` record per window — ``status="proposal"``
when it holds 2…max_characters characters (paper §3.2: clips with 1 or more than 6 characters are
dropped), else ``status="discarded"`` with the reason in ``notes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.cast import Cast, members_in
from perr.construct.characters import summarise
from perr.construct.segments import Segment, Window
from perr.faces import Track
from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan
from perr.subtitles import Cue


@dataclass(frozen=True)
class ProposalRules:
    min_occurrences: int = 2  # sampled frames a character needs inside a window to count
    max_characters: int = 6
    n_candidates: int = 3


@dataclass
class Proposals:
    """One video's clip records and what goes beside them on disk."""

    clips: list[Clip] = field(default_factory=list)  # status "proposal"
    dropped: list[Clip] = field(default_factory=list)  # status "discarded", the reason in `notes`
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # "<clip_id>/<c>" → mean dlib descriptor
    thumbnails: dict[str, np.ndarray] = field(default_factory=dict)  # relative path → RGB face crop
    boxes: dict[str, list[list[float]]] = field(
        default_factory=dict
    )  # "<clip_id>/<c>" → [[t, x0, y0, x1, y1]]


def character_boxes(tracks: list[Track], start: float, end: float, scale: float) -> list[list[float]]:
    """The character's face boxes inside [start, end) as [time, x0, y0, x1, y1] in source pixels."""
    faces = sorted((f for t in tracks for f in t.faces if start <= f.time < end), key=lambda f: f.time)
    return [
        [round(f.time, 4), *(round(v * scale, 1) for v in (f.box.x0, f.box.y0, f.box.x1, f.box.y1))]
        for f in faces
    ]


def _ms(t: float) -> float:
    return round(t, 3)


def drop_reason(n_characters: int, max_characters: int) -> str | None:
    if n_characters < 2:
        return f"{n_characters} character(s): a pair needs two"
    if n_characters > max_characters:
        return f"{n_characters} characters (more than {max_characters})"
    return None


def make_proposals(
    key: str,
    video: str,
    plan: list[tuple[Segment, list[Window], list[tuple[float, float, str]]]],
    cast: Cast,
    cues: list[Cue],
    cuts: list[float],
    sample_step: float,
    rules: ProposalRules | None = None,
    extra: dict[str, Any] | None = None,
    box_scale: float = 1.0,
    body_step: float | None = None,
    crowded: Sequence[float] = (),
    max_faces: int = 0,
) -> Proposals:
    """The proposals and dropped windows of one video, with identity descriptors, face boxes and thumbnails.

    The characters of a window are the cast members seen in it (ids of the whole video's cast), most
    frequent first; the candidates' thumbnails are named ``thumbnails/<clip_id>/<character>.jpg``.
    Each character of a proposal points at its face boxes (``tracks/<video>.json#<clip_id>/<character>``,
    source pixels: the sampled frames' boxes × `box_scale`) and its descriptor
    (``characters/<video>.npz#…``), so the features reuse them instead of detecting and identifying
    faces again. A person only ever seen as a body has neither.
    """
    rules = rules or ProposalRules()
    extra = extra or {}
    out = Proposals()
    clips, dropped, embeddings = out.clips, out.dropped, out.embeddings
    names = {m.id: m.name for m in cast.members}

    def next_id() -> str:
        return f"{key}_{len(clips) + len(dropped):03d}"

    for seg, windows, rejects in plan:
        for w in windows:
            chars = [
                c
                for c in summarise(
                    members_in(cast, w.start, w.end), w.start, w.end, sample_step, cuts, body_step
                )
                if c.occurrences >= rules.min_occurrences
            ]
            cid = next_id()
            reason = drop_reason(len(chars), rules.max_characters)
            crowd = sum(1 for t in crowded if w.start <= t < w.end)
            note = (
                f"a crowd: {crowd} sampled frame(s) held more than {max_faces} faces, only the largest were kept"
                if crowd
                else None
            )
            characters = []
            for k, c in enumerate(chars, start=1):
                thumb = boxes = descriptor = None
                faced = any(t.faces for t in c.tracks)
                if reason is None:
                    ref = f"{cid}/{c.id}"
                    if c.embedding is not None:
                        embeddings[ref] = c.embedding.astype(np.float32)
                        descriptor = f"characters/{key}.npz#{ref}"
                    if k <= rules.n_candidates and c.thumbnail is not None:
                        thumb = (Path("thumbnails") / cid / f"{c.id}.jpg").as_posix()
                        out.thumbnails[thumb] = c.thumbnail
                    if faced:
                        out.boxes[ref] = character_boxes(c.tracks, w.start, w.end, box_scale)
                        boxes = f"tracks/{key}.json#{ref}"
                characters.append(
                    Character(
                        id=c.id,
                        name=names.get(c.id),
                        seen_as="face" if faced else "body",
                        spans=[TimeSpan(start=_ms(a), end=_ms(b)) for a, b in c.spans],
                        occurrences=c.occurrences,
                        thumbnail=thumb,
                        boxes=boxes,
                        descriptor=descriptor,
                    )
                )
            clip = Clip(
                clip_id=cid,
                video=video,
                start=_ms(w.start),
                end=_ms(w.end),
                shots=[TimeSpan(start=_ms(s.start), end=_ms(s.end)) for s in w.shots],
                characters=characters,
                candidates=[c.id for c in characters[: rules.n_candidates]] if reason is None else [],
                subtitles=[
                    SubtitleEvent(start=_ms(max(c.start, w.start)), end=_ms(min(c.end, w.end)), text=c.text)
                    for c in cues
                    if c.end > w.start and c.start < w.end and c.text.strip()
                ],
                status="proposal" if reason is None else "discarded",
                notes="; ".join(n for n in (reason, note) if n) or None,
                extra={"segment": seg.index, **extra},
            )
            (clips if reason is None else dropped).append(clip)
        for a, b, why in rejects:
            crowd = sum(1 for t in crowded if a <= t < b)
            dropped.append(
                Clip(
                    clip_id=next_id(),
                    video=video,
                    start=_ms(a),
                    end=_ms(max(b, a + 1e-3)),
                    status="discarded",
                    notes=why
                    + (
                        f"; a crowd: {crowd} sampled frame(s) held more than {max_faces} faces"
                        if crowd
                        else ""
                    ),
                    extra={"segment": seg.index},
                )
            )
    return out
