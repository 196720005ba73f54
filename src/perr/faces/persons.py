"""People of one shot: face tracks and body tracks put together.

The person detector runs on fewer sampled frames than the face detector (it costs more), and its
boxes are tracked the same way (:class:`perr.faces.FaceTracker`). A body track and a face track are
one person when, at the frames both were seen, the face sits in the head region of the body box
(horizontally inside it, in its upper part). The pairing is one-to-one, best agreement first.

What is left decides how a person without a visible face enters a clip:

* a body track that holds, at some shared frame, the face of a face track it was not paired with, or
  lies mostly inside a body box already counted, is a second box on someone already counted (two
  bodies for one person, or a body box spanning two people): it is dropped;
* any other body track is a **person of its own** (``kind == "body"``): seen from behind, too small
  or too blurred for a face. It counts among the shot's people and can be a pair candidate; it has no
  identity descriptor, so it never joins a person of another shot.
"""

from __future__ import annotations

from collections.abc import Sequence

from perr.faces.box import FaceBox
from perr.faces.tracker import Track

#: Share of the shared frames at which the face must sit in the body's head region.
MIN_AGREEMENT = 0.5
#: The head region: the upper part of the body box, as a fraction of its height (0.6, not 0.45: a body
#: cut off by the bottom of a close shot puts the face centre at half its box).
HEAD_REGION = 0.6
#: A body box this much inside another (intersection over its own area) is a second box on one person.
NESTED = 0.7


def in_head_region(face: FaceBox, body: FaceBox) -> bool:
    """Whether a face box sits where the head of a body box is."""
    cx, cy = face.center
    return (
        body.x0 - 0.1 * body.w <= cx <= body.x1 + 0.1 * body.w
        and body.y0 - 0.15 * body.h <= cy <= body.y0 + HEAD_REGION * body.h
        and face.w <= 0.9 * body.w
    )


def _shared(a: Track, b: Track) -> list[tuple[FaceBox, FaceBox]]:
    """The (a box, b box) pairs at the frames both tracks were detected in (detections in ``faces``)."""
    boxes = {round(o.time, 4): o.box for o in a.faces}
    return [(boxes[t], o.box) for o in b.faces if (t := round(o.time, 4)) in boxes]


def _agreement(face: Track, body: Track) -> tuple[int, int]:
    """(frames where the face sits in the body's head region, frames both were seen)."""
    pairs = _shared(face, body)
    return sum(in_head_region(f, b) for f, b in pairs), len(pairs)


def link_bodies(face_tracks: Sequence[Track], body_tracks: Sequence[Track], next_id: int) -> list[Track]:
    """The people of one shot: `face_tracks` with their paired body boxes in ``bodies``, then the
    body-only people (new ids from `next_id`), in that order. Body tracks come from a tracker run on
    person boxes, so their detections are in ``faces``; they move to ``bodies`` here."""
    scores = []
    for fi, f in enumerate(face_tracks):
        for bi, b in enumerate(body_tracks):
            hits, shared = _agreement(f, b)
            if shared and hits / shared >= MIN_AGREEMENT:
                scores.append((hits / shared, hits, -fi, -bi))
    used_f: set[int] = set()
    used_b: set[int] = set()
    for _, _, nfi, nbi in sorted(scores, reverse=True):
        fi, bi = -nfi, -nbi
        if fi in used_f or bi in used_b:
            continue
        used_f.add(fi)
        used_b.add(bi)
        face_tracks[fi].bodies = list(body_tracks[bi].faces)
    people = list(face_tracks)
    kept = [body_tracks[bi] for bi in sorted(used_b)]
    alone = [b for bi, b in enumerate(body_tracks) if bi not in used_b]
    for b in sorted(alone, key=lambda b: -sum(o.box.area for o in b.faces) / len(b.faces)):
        if any(_agreement(f, b)[0] for f in face_tracks) or any(_nested(b, k) for k in kept):
            continue
        kept.append(b)
        people.append(Track(next_id, b.shot, bodies=list(b.faces)))
        next_id += 1
    return people


def _nested(inner: Track, outer: Track) -> bool:
    """Whether `inner`'s body boxes lie mostly inside `outer`'s (or overlap them by IoU ≥ 0.5) at most of
    the frames both were seen."""
    pairs = _shared(outer, inner)
    inside = sum(
        (o := i.intersection(b)) >= NESTED * max(i.area, 1e-6) or o >= 0.5 * (i.area + b.area - o)
        for b, i in pairs
    )
    return bool(pairs) and inside * 2 >= len(pairs)
