"""A chunk's result on disk, so that a killed build resumes from the chunks it finished.

Each finished chunk is ``chunk-NNNN.npz`` (face crops, shot looks) and ``chunk-NNNN.json`` (everything
else; written last, it marks the chunk complete) in the video's partial folder, beside ``config.txt``, the
digest of the configuration that made them. PySceneDetect timecodes are kept as their presentation time
(pts in units of the stream's time base) and frame rate: ShotScan decodes with PySceneDetect's PyAV
backend, whose positions are PTS-backed, so a loaded timecode is the one that was saved.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.chunks.plan import Chunk
from perr.construct.chunks.scan import ChunkResult
from perr.faces import FaceBox, Track, TrackedFace
from perr.io import atomic_path, write_json
from perr.subtitles import Cue


def _timecode_json(tc: Any) -> dict[str, Any]:
    tb, rate = Fraction(tc.time_base), Fraction(tc.frame_rate)
    return {
        "pts": int(tc.pts),
        "time_base": [tb.numerator, tb.denominator],
        "rate": [rate.numerator, rate.denominator],
    }


def _timecode(d: dict[str, Any]) -> Any:
    import scenedetect
    from scenedetect.common import Timecode

    pts = Timecode(pts=d["pts"], time_base=Fraction(*d["time_base"]))
    return scenedetect.FrameTimecode(pts, fps=Fraction(*d["rate"]))


def save_chunk(scan: ChunkResult, folder: Path) -> Path:
    """Write one chunk's result as JSON + NPZ (atomically, NPZ first, the JSON marks it complete)."""
    stem = folder / f"chunk-{scan.chunk.index:04d}"
    arrays: dict[str, np.ndarray] = {}
    tracks = []
    for k, t in enumerate(scan.tracks):
        for j, (_, crop, _) in enumerate(t.crops):
            arrays[f"crop_{k}_{j}"] = crop
        tracks.append(
            {
                "id": t.id,
                "shot": t.shot,
                "faces": [
                    [f.time, f.box.x0, f.box.y0, f.box.x1, f.box.y1, f.box.score, f.index] for f in t.faces
                ],
                "bodies": [
                    [f.time, f.box.x0, f.box.y0, f.box.x1, f.box.y1, f.box.score, f.index] for f in t.bodies
                ],
                "crops": [[q, b.x0, b.y0, b.x1, b.y1, b.score] for q, _, b in t.crops],
                "motion": t.motion,
            }
        )
    looks = []
    for i, (start, (total, count)) in enumerate(scan.looks.items()):
        arrays[f"look_{i}"] = total
        looks.append([start, count])
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(stem.with_suffix(".npz")) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    meta = {
        "chunk": asdict(scan.chunk),
        "cuts": [_timecode_json(c) for c in scan.cuts],
        "video_end": _timecode_json(scan.video_end) if scan.video_end is not None else None,
        "tracks": tracks,
        "looks": looks,
        "cues": [asdict(c) for c in scan.cues],
        "frames": scan.frames,
        "faces": scan.faces,
        "ocr_calls": scan.ocr_calls,
        "last_time": scan.last_time,
        "resampled": scan.resampled,
        "problems": scan.problems,
        "bodies": scan.bodies,
        "crowded": scan.crowded,
    }
    write_json(stem.with_suffix(".json"), meta, indent=0)
    return stem.with_suffix(".json")


def load_chunk(meta_path: Path) -> ChunkResult:
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    with np.load(meta_path.with_suffix(".npz")) as z:
        arrays = {k: z[k] for k in z.files}
    tracks = []
    for k, t in enumerate(meta["tracks"]):
        track = Track(t["id"], t["shot"])
        track.faces = [TrackedFace(f[0], FaceBox(*f[1:6]), int(f[6])) for f in t["faces"]]
        track.bodies = [TrackedFace(f[0], FaceBox(*f[1:6]), int(f[6])) for f in t["bodies"]]
        track.motion = t["motion"]
        track.crops = [(c[0], arrays[f"crop_{k}_{j}"], FaceBox(*c[1:6])) for j, c in enumerate(t["crops"])]
        tracks.append(track)
    looks = {start: (arrays[f"look_{i}"], count) for i, (start, count) in enumerate(meta["looks"])}
    return ChunkResult(
        chunk=Chunk(**meta["chunk"]),
        cuts=[_timecode(c) for c in meta["cuts"]],
        video_end=_timecode(meta["video_end"]) if meta["video_end"] is not None else None,
        tracks=tracks,
        looks=looks,
        cues=[Cue(**c) for c in meta["cues"]],
        frames=meta["frames"],
        faces=meta["faces"],
        ocr_calls=meta["ocr_calls"],
        last_time=meta["last_time"],
        resampled=meta["resampled"],
        problems=meta["problems"],
        bodies=meta["bodies"],
        crowded=meta["crowded"],
    )


def saved_chunks(folder: Path, config_digest: str) -> dict[int, Path]:
    """Chunk results an earlier run of the same configuration finished (index → JSON path)."""
    marker = folder / "config.txt"
    if not marker.exists() or marker.read_text().strip() != config_digest:
        return {}
    return {int(p.stem.split("-")[1]): p for p in folder.glob("chunk-*.json")}


def start_partial(folder: Path, config_digest: str) -> None:
    """A fresh partial folder for this configuration (an older configuration's chunks are dropped)."""
    marker = folder / "config.txt"
    if marker.exists() and marker.read_text().strip() == config_digest:
        return
    for p in folder.glob("chunk-*"):
        p.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(marker) as tmp:
        tmp.write_text(config_digest + "\n")
