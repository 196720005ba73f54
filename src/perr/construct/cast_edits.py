"""A user's corrections to a video's cast: merge characters, split one, name one.

Edits are kept as a list of operations in ``characters/<video>.edits.json`` and replayed in order on
the cast the build found, each time the video's proposals are made (``perr build cast``, or a re-run of
``perr build run``), so no detection is repeated and ids stay the ones the user saw when editing:

    {"op": "merge", "into": "c1", "from": ["c4", "c7"]}      c4 and c7 become c1
    {"op": "split", "character": "c2", "tracks": [12, 15]}   those tracks of c2 become a new character
    {"op": "name", "character": "c1", "name": "Roxanne"}

Track ids are those listed in ``characters/<video>.json`` (``tracks[].id``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from perr.construct.cast import Cast, CastMember
from perr.errors import PerrError
from perr.io import write_json

OPS = ("merge", "split", "name")


class CastEditError(PerrError, ValueError):
    """An edit that names an unknown character or track, or is malformed (names the file and entry)."""


def apply_edits(cast: Cast, edits: Sequence[Mapping[str, Any]], source: str = "edits") -> Cast:
    """A copy of `cast` with `edits` applied in order (see module doc)."""
    if not edits:
        return cast
    out = Cast([CastMember(m.id, list(m.tracks), m.name) for m in cast.members], cast.issued)
    for k, e in enumerate(edits):
        where = f"{source}[{k}]"
        try:
            op = e["op"]
            if op == "merge":
                into = _member(out, e["into"], where)
                for cid in e["from"]:
                    m = _member(out, cid, where)
                    if m is into:
                        continue
                    into.tracks = sorted([*into.tracks, *m.tracks], key=lambda t: (t.start, t.id))
                    into.name = into.name or m.name
                    out.members.remove(m)
            elif op == "split":
                m = _member(out, e["character"], where)
                ids = {int(t) for t in e["tracks"]}
                moved = [t for t in m.tracks if t.id in ids]
                missing = ids - {t.id for t in moved}
                if missing:
                    raise CastEditError(f"{where}: track(s) {sorted(missing)} are not tracks of {m.id}")
                if len(moved) == len(m.tracks):
                    raise CastEditError(f"{where}: splitting every track off {m.id} leaves it empty")
                m.tracks = [t for t in m.tracks if t.id not in ids]
                out.members.append(CastMember(e.get("new_id") or out.next_id(), moved, e.get("name")))
            elif op == "name":
                _member(out, e["character"], where).name = str(e["name"]) if e["name"] else None
            else:
                raise CastEditError(f"{where}: unknown op {op!r} (expected one of {', '.join(OPS)})")
        except KeyError as missing:
            raise CastEditError(f"{where}: missing field {missing}") from None
        except (TypeError, ValueError) as err:
            if isinstance(err, CastEditError):
                raise
            raise CastEditError(f"{where}: {err}") from None
    return out


def _member(cast: Cast, cid: Any, where: str) -> CastMember:
    try:
        return cast.by_id(str(cid))
    except KeyError as e:
        raise CastEditError(f"{where}: {e.args[0]}") from None


def edits_path(out: Path, key: str) -> Path:
    return out / "characters" / f"{key}.edits.json"


def read_edits(out: Path, key: str) -> list[dict[str, Any]]:
    """The saved edits of a video (an empty list when there are none)."""
    p = edits_path(out, key)
    if not p.exists():
        return []
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CastEditError(f"{p}: not valid JSON ({e})") from None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise CastEditError(f"{p}: expected a JSON list of edit objects")
    return copy.deepcopy(data)


def append_edits(out: Path, key: str, new: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Add edits to a video's list (atomically) and return the whole list."""
    edits = [*read_edits(out, key), *(dict(e) for e in new)]
    write_json(edits_path(out, key), edits)
    return edits
