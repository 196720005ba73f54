"""A video's cast re-made without decoding it again: `perr build cast`.

When a video is finished, its chunk results (person tracks, their crops, shot looks, subtitles) stay in
``state/<video>/`` with the identity descriptors of its tracks (``embeddings.npz``) and what the build
was run with (``build.json``). A user's edits to the cast (:mod:`perr.construct.cast_edits`) are then
applied by replaying the end of the build — cast, story segments, windows, proposals — on that state,
and every file that follows from the cast is rewritten: the clips, the cast file, thumbnails, the
manifest. Nothing is detected again; the shots and subtitles are the ones the build found.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.cast_edits import read_edits
from perr.construct.chunks import load_chunk, merge_chunks
from perr.construct.config import BuildConfig
from perr.construct.outputs import collect_manifest, write_video_outputs
from perr.construct.pipeline import SubtitlePlan, Timer, VideoBuild, VideoResult, finish_video
from perr.errors import PerrError
from perr.faces import Track
from perr.io import atomic_open, read_json, write_json
from perr.subtitles import Cue


class StateMissing(PerrError, FileNotFoundError):
    """The build output has no saved state for a video (built before perr kept it, or deleted)."""


def state_dir(out: Path, key: str) -> Path:
    return out / "state" / key


def keep_state(vb: VideoBuild, partial: Path, out: Path, cfg: BuildConfig, video: Path) -> None:
    """Move a finished video's chunk results to ``state/<video>/`` with its descriptors and settings."""
    dest = state_dir(out, vb.result.key)
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(partial), str(dest))
    vecs = {str(t.id): t.embedding for t in vb.tracks if t.embedding is not None}
    with atomic_open(dest / "embeddings.npz", "wb", encoding=None) as fh:
        np.savez(fh, **vecs)
    write_json(
        dest / "build.json",
        {
            "video": str(video),
            "config": asdict(cfg),
            "box_scale": vb.box_scale,
            "subtitle_source": vb.subtitle_source,
            "cues": [asdict(c) for c in vb.cues],
        },
    )


def recast(out: Path, key: str) -> VideoBuild:
    """Re-make one video's cast and proposals from its saved state with its saved edits, and rewrite
    its files and the manifest (see the module doc)."""
    folder = state_dir(out, key)
    meta_path = folder / "build.json"
    if not meta_path.exists():
        raise StateMissing(
            f"{folder}: no saved build state for video {key!r}; re-run `perr build run` on it (with --force)"
        )
    meta = read_json(meta_path)
    cfg = BuildConfig(**meta["config"])
    chunks = [load_chunk(p) for p in sorted(folder.glob("chunk-*.json"))]
    scan = merge_chunks(chunks)
    with np.load(folder / "embeddings.npz") as z:
        vecs = {int(k): z[k] for k in z.files}
    for t in scan.tracks:
        t.embedding = vecs.get(t.id)

    def saved(_tracks: list[Track]) -> None:  # descriptors come from the state, not the network
        return None

    done = read_json(out / "done" / f"{key}.json")
    res = VideoResult(meta["video"], key, "done", duration=done.get("duration", 0.0))
    res.counts = {k: v for k, v in done.get("counts", {}).items() if k in ("chunks", "chunks_resumed")}
    cues = tuple(Cue(**c) for c in meta["cues"])
    subs = SubtitlePlan(meta["subtitle_source"], cues, ocr=False)
    vb = finish_video(
        Path(meta["video"]),
        key,
        out,
        cfg,
        scan,
        subs,
        res,
        Timer(),
        embed=saved,
        box_scale=meta["box_scale"],
        edits=read_edits(out, key),
    )
    write_video_outputs(vb, out, done.get("config", cfg.digest()))
    collect_manifest(out, manifest_keys(out))
    return vb


def manifest_keys(out: Path) -> list[str]:
    """The videos of a build folder in manifest order (then any others with proposals, by name)."""
    keys: list[str] = []
    manifest = out / "manifest.jsonl"
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            if line.strip():
                clip_id = json.loads(line).get("clip_id", "")
                key = clip_id.rsplit("_", 1)[0]
                if key and key not in keys:
                    keys.append(key)
    keys += sorted(p.stem for p in (out / "clips").glob("*.jsonl") if p.stem not in keys)
    return keys


def cast_summary(out: Path, key: str) -> dict[str, Any]:
    """The cast file of a video, read for display."""
    p = out / "characters" / f"{key}.json"
    if not p.exists():
        raise StateMissing(f"{p}: no cast file (is {key!r} a video of this build folder?)")
    return read_json(p)
