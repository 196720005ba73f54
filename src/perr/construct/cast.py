"""The cast of a video: one character per person, the same id in every clip of the video.

:func:`make_cast` groups every person track of the video (:func:`perr.faces.cluster_identities`) and
numbers the people ``c1, c2, …`` by how many sampled frames show them (most first). A user's edits
(merge two characters, split one, name one: :mod:`perr.construct.cast_edits`) are applied on top, in
the order they were made, so ids stay what the user saw when they made them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from perr.faces import Track, cluster_identities


@dataclass
class CastMember:
    """One person of the video: their tracks (faces and/or bodies), an id and, once given, a name."""

    id: str
    tracks: list[Track]
    name: str | None = None

    @property
    def times(self) -> list[float]:
        """Sampled frames that show this person (a face or a body), sorted."""
        return sorted({round(o.time, 4) for t in self.tracks for o in (*t.faces, *t.bodies)})

    @property
    def kind(self) -> str:
        """``face`` when any of its tracks has a face, else ``body`` (never seen with a face)."""
        return "face" if any(t.faces for t in self.tracks) else "body"


@dataclass
class Cast:
    members: list[CastMember] = field(default_factory=list)
    issued: int = 0  # highest cN ever given in this cast: a merged-away id is never given again

    def by_id(self, cid: str) -> CastMember:
        for m in self.members:
            if m.id == cid:
                return m
        raise KeyError(f"no character {cid!r} in the cast (have: {', '.join(m.id for m in self.members)})")

    def of_tracks(self) -> dict[int, str]:
        """Track id → character id."""
        return {t.id: m.id for m in self.members for t in m.tracks}

    def next_id(self) -> str:
        """A new id, never one this cast gave before (a merged-away ``c3`` stays retired)."""
        n = max([self.issued, *(int(m.id[1:]) for m in self.members if m.id[1:].isdigit())])
        self.issued = n + 1
        return f"c{n + 1}"


def make_cast(
    tracks: Sequence[Track],
    threshold: float,
    min_occurrences: int = 1,
    not_a_person: Callable[[list[Track]], bool] | None = None,
) -> Cast:
    """Every person of a video seen in at least `min_occurrences` sampled frames, ids by presence.

    People seen less often (a face glimpsed in one frame, a false detection) get no id: they could
    not be a clip's character anyway (a character needs `min_occurrences` inside the clip). Nor does a
    group of tracks `not_a_person` calls a picture (a poster or a photo: its tracks are clustered
    with the others first, so a short track of the picture goes with the long still ones)."""
    groups = cluster_identities(tracks, threshold)
    members = [CastMember("", g) for g in groups if not_a_person is None or not not_a_person(g)]
    members = [m for m in members if len(m.times) >= min_occurrences]
    members.sort(key=lambda m: (-len(m.times), m.times[0], m.tracks[0].id))
    for k, m in enumerate(members, start=1):
        m.id = f"c{k}"
    return Cast(members, issued=len(members))


def shot_people(cast: Cast) -> dict[int, frozenset[str]]:
    """Shot index → the characters seen in that shot."""
    out: dict[int, set[str]] = {}
    for m in cast.members:
        for t in m.tracks:
            out.setdefault(t.shot, set()).add(m.id)
    return {k: frozenset(v) for k, v in out.items()}


def members_in(cast: Cast, start: float, end: float) -> Iterable[CastMember]:
    """The cast members with a track overlapping [start, end)."""
    for m in cast.members:
        if any(t.end >= start and t.start < end for t in m.tracks):
            yield m
