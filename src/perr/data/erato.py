"""Import ERATO (Gao et al., ACM MM'21) as released to third parties: frames, mp3 and srt per clip.

ERATO is distributed under a EULA, so it never ships with perr. A user who has it points
``perr data import-erato ROOT --out MANIFEST`` at the folder with this layout::

    ROOT/img/<class>/<clip>/000001.jpg, 000002.jpg, …   frames of one clip (sorted by name)
    ROOT/mp3/<class>/<clip>.mp3                           its audio (optional)
    ROOT/srt/<class>/<clip>.srt                           its subtitles (optional)

``<class>`` is the relationship label folder (Hostile, Tense, Mild, Intimate, Neutral — any case;
a few aliases such as "hostility" or "intimacy" are accepted; any other name is an error naming the
folder). ``<clip>`` is usually a number, matching ``<n>.mp3`` and ``<n>.srt``.

Each clip becomes one manifest record whose ``video`` is the frames folder, with ``fps``, ``audio``
(the mp3), ``subtitles`` (from the srt), ``label`` and ``start``/``end`` (0 to frames / fps), which
``perr features extract`` reads like any video. The frame rate is ``--fps`` when given, else the
number of frames divided by the mp3's duration. ERATO has no face tracks, so the records carry no
characters and the person extractor picks the pair itself (the two faces seen most often).
The layout has no split either: run ``perr annotate split`` on the manifest (the paper's protocol:
20 % of each class as test), or pack with ``--default-split``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from perr.errors import PerrError
from perr.labels import FINE
from perr.manifest import Clip, SubtitleEvent, write_manifest
from perr.subtitles import read_srt
from perr.video import IMAGE_EXTS

#: Folder-name spellings seen for ERATO's classes → perr's fine labels (perr.labels.FINE).
ALIASES: dict[str, str] = {
    "hostility": "hostile",
    "hostiled": "hostile",
    "tension": "tense",
    "intimacy": "intimate",
    "intimated": "intimate",
    "neutrality": "neutral",
    "normal": "neutral",
    "mildness": "mild",
}


class EratoError(PerrError, ValueError):
    """The folder does not have ERATO's layout; the message names the path."""


def erato_label(folder_name: str) -> str:
    """The perr fine label of an ERATO class folder name (case-insensitive, aliases allowed)."""
    key = re.sub(r"[\s_\-]+", "", folder_name.strip().lower())
    key = re.sub(r"^\d+", "", key)  # "0_hostile" / "1-tense" style prefixes
    if key in FINE:
        return key
    if key in ALIASES:
        return ALIASES[key]
    raise EratoError(
        f"unknown ERATO class folder {folder_name!r}: expected one of {', '.join(FINE)} (any case) "
        f"or an alias ({', '.join(sorted(ALIASES))})"
    )


def _natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds of an audio file (container metadata, else by decoding)."""
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise EratoError(f"{path}: no audio stream")
        s = c.streams.audio[0]
        if s.duration is not None and s.time_base:
            return float(s.duration * s.time_base)
        if c.duration:
            return c.duration / 1_000_000
        return sum(float(f.samples) / f.sample_rate for f in c.decode(audio=0))


@dataclass
class EratoImport:
    clips: list[Clip] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    per_class: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        counts = ", ".join(f"{k}: {v}" for k, v in self.per_class.items())
        lines = [f"{len(self.clips)} clips ({counts})"]
        lines += [f"  skipped: {p}" for p in self.problems]
        return "\n".join(lines)


def scan_erato(
    root: str | os.PathLike, fps: float | None = None, relative_to: str | os.PathLike | None = None
) -> EratoImport:
    """Read an ERATO-layout folder into clip records (paths relative to `relative_to` when given).

    An unknown class folder raises EratoError; a broken clip (no frames, no fps) is skipped and listed.
    """
    root = Path(root)
    img = root / "img"
    if not img.is_dir():
        raise EratoError(
            f"{root}: no img/ folder — expected ROOT/img/<class>/<clip>/000001.jpg (see `perr data import-erato --help`)"
        )
    class_dirs = sorted((d for d in img.iterdir() if d.is_dir()), key=lambda d: d.name.lower())
    if not class_dirs:
        raise EratoError(f"{img}: no class folders")
    labels = {d.name: erato_label(d.name) for d in class_dirs}  # fail fast, naming the folder
    rel_base = Path(relative_to).resolve() if relative_to is not None else None

    def ref(p: Path) -> str:
        if rel_base is None:
            return str(p.resolve())
        return os.path.relpath(p.resolve(), rel_base)

    result = EratoImport()
    for cdir in class_dirs:
        label = labels[cdir.name]
        for clip_dir in sorted((d for d in cdir.iterdir() if d.is_dir()), key=lambda d: _natural_key(d.name)):
            n_frames = sum(1 for p in clip_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS)
            cid = f"erato/{label}/{clip_dir.name}"
            if n_frames == 0:
                result.problems.append(f"{clip_dir}: no frames")
                continue
            mp3 = root / "mp3" / cdir.name / f"{clip_dir.name}.mp3"
            srt = root / "srt" / cdir.name / f"{clip_dir.name}.srt"
            rate = fps
            if rate is None:
                if not mp3.exists():
                    result.problems.append(
                        f"{clip_dir}: no {mp3.name} to infer the frame rate from; pass --fps"
                    )
                    continue
                rate = n_frames / audio_duration(mp3)
            try:
                subs = (
                    [SubtitleEvent(start=c.start, end=c.end, text=c.text) for c in read_srt(srt)]
                    if srt.exists()
                    else []
                )
            except ValueError as e:
                result.problems.append(f"{srt}: {e}")
                continue
            result.clips.append(
                Clip(
                    clip_id=cid,
                    video=ref(clip_dir),
                    fps=rate,
                    audio=ref(mp3) if mp3.exists() else None,
                    start=0.0,
                    end=n_frames / rate,
                    subtitles=subs,
                    label=label,
                    status="annotated",
                    extra={"erato_class_folder": cdir.name},
                )
            )
            result.per_class[label] = result.per_class.get(label, 0) + 1
    return result


def import_erato(root: str | os.PathLike, out: str | os.PathLike, fps: float | None = None) -> EratoImport:
    """Write the manifest of an ERATO-layout folder to `out` (JSONL; paths relative to its folder)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = scan_erato(root, fps=fps, relative_to=out.parent)
    if not result.clips:
        raise EratoError(f"{root}: no usable clip found\n" + "\n".join(result.problems))
    write_manifest(out, result.clips)
    return result
