"""Read Label Studio's JSON export into typed votes, reporting every bad task/annotation and keeping the rest.

The export (Label Studio "JSON" format) is a list of tasks, each with `id`, `data` and `annotations[]`;
an annotation has `id`, `completed_by` (a user id, or an object with `id`/`email`), `result[]` of
`{from_name, to_name, type, value}`, `was_cancelled` and `created_at`. One annotation becomes one
`Vote`; a malformed one becomes a `Problem` naming the task, annotation and field, and is left out.
Cancelled (skipped) annotations are counted, not reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from perr.annotate import schema
from perr.labels import FINE
from perr.manifest import SubtitleEvent


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the export, located so a user can find it in Label Studio."""

    task_id: str
    field: str
    message: str
    annotation_id: str | None = None

    def __str__(self) -> str:
        ann = f" annotation {self.annotation_id}" if self.annotation_id is not None else ""
        return f"task {self.task_id}{ann}: {self.field}: {self.message}"

    def to_json(self) -> dict:
        return {
            "task_id": self.task_id,
            "annotation_id": self.annotation_id,
            "field": self.field,
            "message": self.message,
        }


@dataclass(frozen=True)
class Vote:
    """One annotator's complete annotation of one task."""

    task_id: str
    annotation_id: str
    annotator: str
    created_at: datetime | None
    discard: bool
    discard_reason: str | None = None
    pair: tuple[str, str] | None = None  # sorted
    label: str | None = None
    subtitles: tuple[SubtitleEvent, ...] | None = None  # None: the annotator left no subtitle result

    @property
    def order(self) -> tuple:
        """Chronological order (created_at, then annotation id) used for 'first annotator' rules."""
        ts = self.created_at.timestamp() if self.created_at is not None else float("inf")
        return (ts, _natural(self.annotation_id))


@dataclass
class TaskVotes:
    task_id: str
    clip_id: str
    candidates: tuple[str, ...]
    votes: list[Vote] = field(default_factory=list)


@dataclass
class ParsedExport:
    tasks: list[TaskVotes]
    problems: list[Problem]
    n_tasks: int = 0
    n_cancelled: int = 0


def _natural(s: str) -> tuple:
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def _annotator(raw: Any) -> str | None:
    if isinstance(raw, Mapping):
        raw = raw.get("id", raw.get("email"))
    if isinstance(raw, bool) or raw is None:
        return None
    return str(raw) if isinstance(raw, (int, str)) and str(raw) else None


def _timestamp(raw: Any) -> datetime | None:
    if not isinstance(raw, str):
        return None
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def _choices(value: Any) -> list[str]:
    choices = value.get("choices") if isinstance(value, Mapping) else None
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise ValueError("value.choices must be a list of strings")
    return choices


def _texts(value: Any) -> list[str]:
    text = value.get("text") if isinstance(value, Mapping) else None
    if isinstance(text, str):
        text = [text]
    if not isinstance(text, list) or not all(isinstance(t, str) for t in text):
        raise ValueError("value.text must be a list of strings")
    # A textarea item may hold several lines if the annotator typed newlines.
    return [line for t in text for line in t.splitlines() if line.strip()]


def parse_annotation(
    task_id: str, candidates: Sequence[str], ann: Any, index: int, time_offset: float = 0.0
) -> tuple[Vote | None, list[Problem]]:
    """One annotation → a Vote, or the list of problems that make it unusable.

    `time_offset` (the task's `data.time_offset`, set when clips were cut) is added to subtitle times
    so votes always carry times in seconds of the source video.
    """
    if not isinstance(ann, Mapping):
        return None, [Problem(task_id, f"annotations[{index}]", "an annotation must be a JSON object")]
    aid = str(ann.get("id", f"#{index}"))
    probs: list[Problem] = []

    def bad(fld: str, msg: str) -> None:
        probs.append(Problem(task_id, fld, msg, aid))

    who = _annotator(ann.get("completed_by"))
    if who is None:
        bad("completed_by", "missing or not a user id")
    try:
        created = _timestamp(ann.get("created_at"))
    except ValueError:
        created = None
        bad("created_at", f"not an ISO timestamp: {ann.get('created_at')!r}")
    result = ann.get("result")
    if not isinstance(result, list):
        bad("result", "missing or not a list")
        return None, probs
    by_name: dict[str, Any] = {}
    for k, item in enumerate(result):
        if not isinstance(item, Mapping) or not isinstance(item.get("from_name"), str) or "value" not in item:
            bad(f"result[{k}]", "needs from_name and value")
            continue
        by_name[item["from_name"]] = item["value"]

    discard, reason, pair, label, subs = False, None, None, None, None
    try:
        if schema.DISCARD in by_name:
            discard = schema.DISCARD_VALUE in _choices(by_name[schema.DISCARD])
        if schema.DISCARD_REASON in by_name:
            reason = " ".join(_texts(by_name[schema.DISCARD_REASON])) or None
    except ValueError as e:
        bad(schema.DISCARD, str(e))
    if schema.SUBTITLES in by_name:
        try:
            lines = _texts(by_name[schema.SUBTITLES])
            events = []
            for n, line in enumerate(lines, start=1):
                try:
                    ev = schema.parse_subtitle_line(line)
                    events.append(
                        ev.model_copy(
                            update={
                                "start": round(ev.start + time_offset, 3),
                                "end": round(ev.end + time_offset, 3),
                            }
                        )
                    )
                except ValueError as e:
                    bad(schema.SUBTITLES, f"line {n}: {e}")
            subs = tuple(sorted(events, key=lambda ev: (ev.start, ev.end)))
        except ValueError as e:
            bad(schema.SUBTITLES, str(e))
    if not discard:
        if schema.LABEL not in by_name:
            bad(schema.LABEL, "no relationship label chosen (and the clip is not discarded)")
        else:
            try:
                got = _choices(by_name[schema.LABEL])
                if len(got) != 1 or got[0] not in FINE:
                    bad(schema.LABEL, f"expected one of {', '.join(FINE)}, got {got}")
                else:
                    label = got[0]
            except ValueError as e:
                bad(schema.LABEL, str(e))
        if schema.PAIR not in by_name:
            bad(schema.PAIR, "no character pair chosen (and the clip is not discarded)")
        else:
            try:
                got = _choices(by_name[schema.PAIR])
                unknown = [c for c in got if candidates and c not in candidates]
                if len(set(got)) != 2:
                    bad(schema.PAIR, f"pick exactly two characters, got {len(set(got))}: {got}")
                elif unknown:
                    bad(schema.PAIR, f"{unknown} not among the candidates {list(candidates)}")
                else:
                    a, b = sorted(set(got))
                    pair = (a, b)
            except ValueError as e:
                bad(schema.PAIR, str(e))
    if probs:
        return None, probs
    assert who is not None
    vote = Vote(task_id, aid, who, created, discard, reason, pair, label, subs)
    return vote, []


def parse_export(tasks: Any) -> ParsedExport:
    """Parse an already-loaded export; never raises on content, reports it instead."""
    if not isinstance(tasks, list):
        raise schema.AnnotationError(
            "a Label Studio JSON export is a list of tasks (use the 'JSON' export, not 'JSON_MIN')"
        )
    out = ParsedExport(tasks=[], problems=[], n_tasks=len(tasks))
    for i, task in enumerate(tasks, start=1):  # "#i": 1-based position in the file when a task has no id
        if not isinstance(task, Mapping):
            out.problems.append(Problem(f"#{i}", "<task>", "a task must be a JSON object"))
            continue
        tid = str(task.get("id", f"#{i}"))
        data = task.get("data")
        clip_id = data.get("clip_id") if isinstance(data, Mapping) else None
        if not isinstance(clip_id, str) or not clip_id:
            out.problems.append(
                Problem(tid, "data.clip_id", "missing (was the task made by `perr annotate export`?)")
            )
            continue
        cands = data.get("candidates") or []
        candidates = tuple(str(c) for c in cands) if isinstance(cands, list) else ()
        offset = data.get("time_offset") or 0.0
        if not isinstance(offset, (int, float)) or isinstance(offset, bool) or offset < 0:
            out.problems.append(
                Problem(tid, "data.time_offset", f"must be a number of seconds >= 0, got {offset!r}")
            )
            continue
        anns = task.get("annotations")
        if not isinstance(anns, list):
            out.problems.append(Problem(tid, "annotations", "missing or not a list"))
            continue
        tv = TaskVotes(tid, clip_id, candidates)
        latest: dict[str, Vote] = {}
        for k, ann in enumerate(anns):
            if isinstance(ann, Mapping) and ann.get("was_cancelled"):
                out.n_cancelled += 1
                continue
            vote, probs = parse_annotation(tid, candidates, ann, k, float(offset))
            out.problems.extend(probs)
            if vote is None:
                continue
            prev = latest.get(vote.annotator)
            if prev is not None:
                keep, drop = (vote, prev) if vote.order > prev.order else (prev, vote)
                out.problems.append(
                    Problem(
                        tid,
                        "completed_by",
                        f"annotator {vote.annotator} annotated twice; kept annotation {keep.annotation_id}",
                        drop.annotation_id,
                    )
                )
                vote = keep
            latest[vote.annotator] = vote
        tv.votes = sorted(latest.values(), key=lambda v: v.order)
        if not tv.votes:
            out.problems.append(Problem(tid, "annotations", "no complete annotation: task left unlabelled"))
        out.tasks.append(tv)
    return out


def read_export(path: str | os.PathLike) -> ParsedExport:
    """Load and parse a Label Studio JSON export file."""
    with open(Path(path), encoding="utf-8") as fh:
        try:
            raw = json.load(fh)
        except json.JSONDecodeError as e:
            raise schema.AnnotationError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}") from None
    try:
        return parse_export(raw)
    except ValueError as e:
        raise schema.AnnotationError(f"{path}: {e}") from None


def load_users(path: str | os.PathLike | None) -> dict[str, str]:
    """Annotator names by user id, from `{"1": "alice"}` or Label Studio's users list (`users.list()`)."""
    if path is None:
        return {}
    with open(path, encoding="utf-8") as fh:
        try:
            raw = json.load(fh)
        except json.JSONDecodeError as e:
            raise schema.AnnotationError(f"{path}: not valid JSON: {e.msg} at line {e.lineno}") from None
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        names = {}
        for u in raw:
            if isinstance(u, Mapping) and "id" in u:
                full = " ".join(x for x in (u.get("first_name"), u.get("last_name")) if x)
                names[str(u["id"])] = u.get("username") or u.get("email") or full or str(u["id"])
        return names
    raise schema.AnnotationError(f"{path}: expected a JSON object id→name or a list of user objects")
