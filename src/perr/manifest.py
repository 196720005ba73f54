"""The clip manifest: one JSON record per clip (JSONL), validated with pydantic.

A manifest flows through every stage: `perr build` writes clip proposals, `perr annotate import`
adds the pair, corrected subtitles, label and split, `perr features extract` reads it. Loading
collects *every* bad row and field before failing, so a user fixes a file in one pass.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from perr.errors import PerrError
from perr.io import atomic_open
from perr.labels import FINE

Split = Literal["train", "val", "test"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimeSpan(_Record):
    """A half-open time interval in seconds, relative to the start of the source video."""

    start: float = Field(ge=0)
    end: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> TimeSpan:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def duration(self) -> float:
        return self.end - self.start


class SubtitleEvent(TimeSpan):
    text: str


class Character(_Record):
    """One person of the clip. `perr build` gives the id of the video's cast (``characters/<video>.json``):
    the same id is the same person in every clip of that video."""

    id: str
    name: str | None = Field(default=None, description="the name a user gave the character in the cast")
    seen_as: Literal["face", "body"] = Field(
        default="face", description="'body' for a person only ever seen without a face (from behind, far)"
    )
    spans: list[TimeSpan] = Field(default_factory=list)
    occurrences: int = Field(default=0, ge=0, description="number of sampled frames the face was detected in")
    thumbnail: str | None = None
    boxes: str | None = Field(
        default=None,
        description="its face boxes over time (JSON; `path#key` picks one entry of a file), as `perr build` saw them",
    )
    descriptor: str | None = Field(
        default=None,
        description="its mean dlib identity descriptor (`file.npz#key`), as `perr build` computed it",
    )

    @property
    def seconds_on_screen(self) -> float:
        return sum(s.duration for s in self.spans)


def split_ref(ref: str) -> tuple[str, str | None]:
    """A file reference ``path`` or ``path#key`` (one entry of a JSON object or npz) as (path, key)."""
    path, sep, key = ref.partition("#")
    return path, (key if sep else None)


class Clip(_Record):
    """One clip: a video (file, or a folder of frames) with an interval, its characters and label."""

    clip_id: str = Field(min_length=1)
    video: str = Field(
        min_length=1, description="video file or frames folder; relative paths are relative to the manifest"
    )
    audio: str | None = Field(default=None, description="separate audio file (ERATO ships mp3 beside frames)")
    fps: float | None = Field(default=None, gt=0, description="frame rate of a frames folder")
    drama: str | None = None
    episode: str | None = None
    genre: str | None = None
    start: float = Field(default=0.0, ge=0)
    end: float | None = Field(default=None, ge=0)
    shots: list[TimeSpan] = Field(default_factory=list)
    characters: list[Character] = Field(default_factory=list)
    candidates: list[str] = Field(default_factory=list, description="top-3 character ids by occurrence")
    pair: tuple[str, str] | None = None
    subtitles: list[SubtitleEvent] = Field(default_factory=list)
    label: str | None = None
    split: Split | None = None
    status: str | None = Field(
        default=None, description="e.g. 'proposal', 'annotated', 'discarded', 'review'"
    )
    notes: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("label")
    @classmethod
    def _known_label(cls, v: str | None) -> str | None:
        if v is not None and v not in FINE:
            raise ValueError(f"unknown label {v!r}; expected one of {', '.join(FINE)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Clip:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        ids = [c.id for c in self.characters]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate character id")
        if self.pair is not None:
            if self.pair[0] == self.pair[1]:
                raise ValueError(f"pair names the same character twice: {self.pair[0]!r}")
            if self.characters:
                missing = [p for p in self.pair if p not in ids]
                if missing:
                    raise ValueError(f"pair names unknown character(s) {missing}")
        return self

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start

    def pair_ids(self) -> tuple[str | None, str | None]:
        """The two characters whose relationship the clip is about — the one rule every stage uses:
        the annotated `pair`; else the first two `candidates`; roles still open are filled with the other
        characters by occurrences (most first). None in a role the clip cannot fill."""
        if self.pair is not None:
            return self.pair
        ids = list(self.candidates[:2])
        for c in sorted(self.characters, key=lambda c: -c.occurrences):
            if len(ids) == 2:
                break
            if c.id not in ids:
                ids.append(c.id)
        a, b = [*ids, None, None][:2]
        return a, b

    def character(self, cid: str) -> Character:
        for c in self.characters:
            if c.id == cid:
                return c
        raise KeyError(f"clip {self.clip_id}: no character {cid!r}")

    def resolve(self, path: str | None, base: Path) -> Path | None:
        """A path field made absolute against the manifest's folder."""
        if path is None:
            return None
        p = Path(path)
        return p if p.is_absolute() else (base / p)


@dataclass(frozen=True)
class RowError:
    """One problem in one row: what a user needs to find and fix it."""

    row: int  # 1-based line number
    clip_id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f" (clip {self.clip_id})" if self.clip_id else "")
        return f"{where}: {self.field}: {self.message}"


class ManifestError(PerrError, ValueError):
    def __init__(self, path: str | os.PathLike, errors: Sequence[RowError]) -> None:
        self.path = str(path)
        self.errors = list(errors)
        lines = "\n".join(f"  {e}" for e in self.errors[:50])
        more = f"\n  ... and {len(self.errors) - 50} more" if len(self.errors) > 50 else ""
        super().__init__(f"{self.path}: {len(self.errors)} problem(s)\n{lines}{more}")


def _pydantic_errors(row: int, clip_id: str | None, exc: ValidationError) -> list[RowError]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "<record>"
        out.append(RowError(row, clip_id, loc, err["msg"]))
    return out


def parse_manifest(path: str | os.PathLike, check_files: bool = False) -> tuple[list[Clip], list[RowError]]:
    """Read a JSONL manifest, returning the valid clips and every problem found (never raises on rows)."""
    path = Path(path)
    clips: list[Clip] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    base = path.parent
    with open(path, encoding="utf-8") as fh:
        for row, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                errors.append(RowError(row, None, "<json>", f"not valid JSON: {e.msg} at column {e.colno}"))
                continue
            if not isinstance(raw, dict):
                errors.append(RowError(row, None, "<json>", "a record must be a JSON object"))
                continue
            cid = raw.get("clip_id") if isinstance(raw.get("clip_id"), str) else None
            try:
                clip = Clip.model_validate(raw)
            except ValidationError as e:
                errors.extend(_pydantic_errors(row, cid, e))
                continue
            if clip.clip_id in seen:
                errors.append(
                    RowError(
                        row,
                        clip.clip_id,
                        "clip_id",
                        f"duplicate clip id (first seen in row {seen[clip.clip_id]})",
                    )
                )
                continue
            seen[clip.clip_id] = row
            if check_files:
                for fname in ("video", "audio"):
                    if "://" in (getattr(clip, fname) or ""):
                        continue  # a URI (e.g. synthetic://…, the generated default) is not a local file
                    p = clip.resolve(getattr(clip, fname), base)
                    if p is not None and not p.exists():
                        errors.append(RowError(row, clip.clip_id, fname, f"file not found: {p}"))
            clips.append(clip)
    return clips, errors


def load_manifest(path: str | os.PathLike, check_files: bool = False) -> list[Clip]:
    """Read and validate a manifest; raise ManifestError listing every bad row and field."""
    clips, errors = parse_manifest(path, check_files=check_files)
    if errors:
        raise ManifestError(path, errors)
    return clips


def write_manifest(path: str | os.PathLike, clips: Iterable[Clip]) -> Path:
    """Write clips as JSONL atomically."""
    path = Path(path)
    with atomic_open(path) as fh:
        for clip in clips:
            fh.write(clip.model_dump_json(exclude_none=True) + "\n")
    return path
