"""What `perr build run` writes for one video, and the manifest over all of them.

Layout of ``--out DIR``::

    shots/<video>.csv          PySceneDetect scene list
    subtitles/<video>.srt|json timed subtitle events (sidecar, embedded stream, or OCR)
    thumbnails/<clip>/<c>.jpg  face crop of each pair candidate
    thumbnails/<video>/<c>_<k>.jpg  the cast's thumbnails: a few best crops of each character
    characters/<video>.json    the cast: every character of the video (id, name, screen time, clips,
                               thumbnails, its tracks); the same id is the same person in every clip
    characters/<video>.edits.json  a user's merges, splits and names (perr build cast), replayed on the cast
    characters/<video>.npz     mean dlib identity descriptor per clip character, key "<clip_id>/<c>"
    tracks/<video>.json        each character's face boxes over time (source pixels), key "<clip_id>/<c>"
    segments/<video>.json      story segments: [{index, start, end, shots}]
    state/<video>/             what the sampled pass found (person tracks, crops, shot looks, descriptors):
                               `perr build cast` re-makes the cast and proposals from it without decoding
    clips/<video>.jsonl        that video's proposals (Clip records)     ┐ written atomically, last:
    dropped/<video>.jsonl      windows dropped, with the reason in notes │ their presence means the
    done/<video>.json          stage timings, counts, config hash       ┘ video is finished
    manifest.jsonl             all proposals (rebuilt at the end of every run)
    failures.json              the files that failed in the last run, with the reason

Paths inside every JSONL (video, thumbnails) are relative to DIR, where ``manifest.jsonl`` lives.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.characters import summarise
from perr.construct.pipeline import VideoBuild, VideoResult
from perr.construct.shots import write_shots_csv
from perr.io import atomic_open, read_json, write_json
from perr.manifest import Clip, parse_manifest, write_manifest
from perr.subtitles import write_cues_json, write_srt


def write_jpeg(path: Path, rgb: np.ndarray, quality: int = 90) -> None:
    """Atomically write an RGB image as JPEG (thumbnails)."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"cannot encode thumbnail {path}")
    with atomic_open(path, "wb", encoding=None) as fh:
        fh.write(buf.tobytes())


def write_thumbnails(thumbnails: Mapping[str, np.ndarray], out: Path) -> None:
    for rel, image in thumbnails.items():
        write_jpeg(out / rel, image)


def write_character_files(vb: VideoBuild, out: Path) -> None:
    """What the clips' characters point at: thumbnails, identity descriptors and face boxes."""
    key = vb.result.key
    write_thumbnails(vb.proposals.thumbnails, out)
    with atomic_open(out / "characters" / f"{key}.npz", "wb", encoding=None) as fh:
        np.savez(fh, **vb.proposals.embeddings)
    write_json(out / "tracks" / f"{key}.json", vb.proposals.boxes, indent=0)


#: Best crops per character in the cast file.
CAST_THUMBNAILS = 3


def _box(b: Any, scale: float) -> list[float]:
    return [round(v * scale, 1) for v in (b.x0, b.y0, b.x1, b.y1)]


def cast_record(vb: VideoBuild) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The cast file of a video (see the module doc) and the thumbnails it names."""
    key, scale = vb.result.key, vb.box_scale
    clips_of: dict[str, list[str]] = {}
    for clip in vb.proposals.clips:
        for c in clip.characters:
            clips_of.setdefault(c.id, []).append(clip.clip_id)
    cuts = [sh.start for sh in vb.shots[1:]]
    of_track = vb.cast.of_tracks()
    thumbs: dict[str, np.ndarray] = {}
    characters = []
    for m in vb.cast.members:
        crops = sorted(
            ((q, crop) for t in m.tracks for q, crop, _ in t.crops[:1] if t.faces or m.kind == "body"),
            key=lambda qc: -qc[0],
        )
        seen = summarise([m], 0.0, math.inf, vb.sample_step, cuts, vb.body_step)
        names = []
        for k, (_, crop) in enumerate(crops[:CAST_THUMBNAILS]):
            rel = (Path("thumbnails") / key / f"{m.id}_{k}.jpg").as_posix()
            thumbs[rel] = crop
            names.append(rel)
        characters.append(
            {
                "id": m.id,
                "name": m.name,
                "seen_as": m.kind,
                "seconds": round(seen[0].seconds, 2) if seen else 0.0,
                "occurrences": len(m.times),
                "clips": clips_of.get(m.id, []),
                "thumbnails": names,
                "tracks": [t.id for t in m.tracks],
            }
        )
    tracks = [
        {
            "id": t.id,
            "shot": t.shot,
            "start": round(t.start, 4),
            "end": round(t.end, 4),
            "character": of_track.get(t.id),
            "kind": t.kind,
            "face_px": None if t.face_height() is None else round(t.face_height() * scale, 1),
            "boxes": [[round(o.time, 4), *_box(o.box, scale)] for o in t.observations],
        }
        for t in vb.tracks
    ]
    record = {"version": 1, "video": key, "key": key, "characters": characters, "tracks": tracks}
    return record, thumbs


def segments_record(vb: VideoBuild) -> list[dict[str, Any]]:
    return [
        {
            "index": s.index,
            "start": round(s.start, 4),
            "end": round(s.end, 4),
            "shots": [sh.index for sh in s.shots],
        }
        for s in vb.segments
    ]


def write_video_outputs(vb: VideoBuild, out: Path, config_digest: str) -> None:
    """Every file of one video, each atomically; the `done` marker last, so its presence means complete."""
    key = vb.result.key
    cast, thumbs = cast_record(vb)
    write_thumbnails(thumbs, out)
    write_json(out / "characters" / f"{key}.json", cast, indent=1)
    write_json(out / "segments" / f"{key}.json", segments_record(vb), indent=1)
    write_shots_csv(out / "shots" / f"{key}.csv", *vb.scene_list)
    if vb.subtitle_source != "none":
        write_srt(out / "subtitles" / f"{key}.srt", vb.cues)
        write_cues_json(out / "subtitles" / f"{key}.json", vb.cues, vb.subtitle_source)
    write_character_files(vb, out)
    write_manifest(out / "dropped" / f"{key}.jsonl", vb.proposals.dropped)
    write_manifest(out / "clips" / f"{key}.jsonl", vb.proposals.clips)
    write_json(out / "done" / f"{key}.json", {**asdict(vb.result), "config": config_digest})


def finished_result(out: Path, path: Path, key: str, config_digest: str) -> VideoResult | None:
    """The result of a video an earlier run finished with the same configuration, else None."""
    done = out / "done" / f"{key}.json"
    if not done.exists() or not (out / "clips" / f"{key}.jsonl").exists():
        return None
    prev = read_json(done)
    if prev.get("config") != config_digest:
        return None
    return VideoResult(
        str(path),
        key,
        "skipped",
        duration=prev.get("duration", 0.0),
        clips=prev.get("clips", 0),
        dropped=prev.get("dropped", 0),
    )


def collect_manifest(out: Path, keys: Iterable[str]) -> Path:
    """Concatenate the per-video proposal files (in input order) into ``manifest.jsonl``."""
    clips: list[Clip] = []
    for key in keys:
        p = out / "clips" / f"{key}.jsonl"
        if p.exists():
            got, errors = parse_manifest(p)
            if errors:
                raise ValueError(f"{p}: {len(errors)} bad record(s): {errors[0]}")
            clips.extend(got)
    return write_manifest(out / "manifest.jsonl", clips)
