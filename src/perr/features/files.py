"""One clip's features on disk: ``DIR/clips/<clip>.npz`` (arrays, masks, times, the extractors' names,
versions and dims, the config), written atomically so a killed run leaves only finished clips."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perr.features.config import ExtractConfig
from perr.io import atomic_path
from perr.store import ModalitySpec

FORMAT = "perr-clip-features/1"


@dataclass
class ClipFeatures:
    clip_id: str
    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    times: np.ndarray
    valid: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    duration: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=dict)


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def clip_filename(clip_id: str) -> str:
    """A file-system-safe, collision-free name for a clip id."""
    safe = _SAFE.sub("_", clip_id).strip("._") or "clip"
    if safe != clip_id:
        safe = f"{safe[:80]}-{hashlib.sha1(clip_id.encode()).hexdigest()[:8]}"
    return safe + ".npz"


def write_clip_file(path: Path, cf: ClipFeatures, specs: Sequence[ModalitySpec], cfg: ExtractConfig) -> None:
    arrays: dict[str, np.ndarray] = {"times": cf.times, "valid": cf.valid.astype(np.uint8)}
    for m in cf.features:
        arrays[m] = cf.features[m].astype(np.float32)
        arrays[f"{m}.mask"] = cf.masks[m].astype(np.uint8)
    meta = {
        "format": FORMAT,
        "clip_id": cf.clip_id,
        "duration": cf.duration,
        "modalities": [asdict(s) for s in specs],
        "config": cfg.to_json(),
        "seconds": cf.seconds,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
        fh.flush()
        os.fsync(fh.fileno())


def read_clip_file(
    path: str | os.PathLike,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any]]:
    """(features, masks, meta) of one clip file."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        names = [s["name"] for s in meta["modalities"]]
        feats = {m: z[m] for m in names}
        masks = {m: z[f"{m}.mask"] for m in names}
        meta["times"] = z["times"]
        meta["valid"] = z["valid"]
    return feats, masks, meta
