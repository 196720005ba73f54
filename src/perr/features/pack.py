"""Pack per-clip feature files into the packed store training reads (one folder per split).

``perr features pack DIR --manifest MANIFEST --out STORE``: clips are grouped by the manifest's
``split`` field; the store header records each modality's name, dim, extractor and version exactly
as extraction wrote them (``DIR/extraction.json``), so ``perr train`` / ``perr evaluate`` can refuse a
store that does not match a checkpoint. Clips without a feature file (failed or not extracted yet)
are listed and left out; clips without a split go to ``--default-split`` or are listed and left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from perr.errors import PerrError
from perr.features.files import FORMAT, clip_filename, read_clip_file
from perr.io import read_json
from perr.manifest import Clip, load_manifest
from perr.store import SPLITS, ModalitySpec, StoreHeader, write_split


class PackError(PerrError, ValueError):
    """Features that cannot be packed; the message names the file."""


@dataclass
class PackSummary:
    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unsplit: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = ", ".join(f"{s}: {n}" for s, n in self.counts.items()) or "nothing"
        lines = [f"packed {parts} → {self.out}"]
        if self.missing:
            lines.append(
                f"  {len(self.missing)} clip(s) without features left out: {', '.join(self.missing[:20])}"
            )
        if self.unsplit:
            lines.append(
                f"  {len(self.unsplit)} clip(s) without a split left out: {', '.join(self.unsplit[:20])}"
            )
        return "\n".join(lines)


def index_row(clip: Clip) -> dict[str, Any]:
    """The index.parquet columns for one clip."""
    a, b = clip.pair_ids()
    return {
        "clip_id": clip.clip_id,
        "label": clip.label,
        "drama": clip.drama,
        "episode": clip.episode,
        "genre": clip.genre,
        "video": clip.video,
        "start": clip.start,
        "end": clip.end,
        "person_a": a,
        "person_b": b,
    }


def pack_features(
    features_dir: str | os.PathLike,
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    default_split: str | None = None,
    dataset: str = "",
) -> PackSummary:
    features_dir, out = Path(features_dir), Path(out)
    rec_path = features_dir / "extraction.json"
    if not rec_path.exists():
        raise PackError(f"{features_dir}: no extraction.json — not a `perr features extract` output folder")
    rec = read_json(rec_path)
    if rec.get("format") != FORMAT:
        raise PackError(f"{rec_path}: format {rec.get('format')!r}, expected {FORMAT!r}")
    specs = [ModalitySpec.from_json(m) for m in rec["modalities"]]
    T = int(rec["config"]["T"])
    if default_split is not None and default_split not in SPLITS:
        raise PackError(f"--default-split must be one of {', '.join(SPLITS)}, got {default_split!r}")
    clips = load_manifest(manifest)
    summary = PackSummary(out)
    by_split: dict[str, list[tuple[Clip, Path]]] = {s: [] for s in SPLITS}
    for c in clips:
        f = features_dir / "clips" / clip_filename(c.clip_id)
        if not f.exists():
            summary.missing.append(c.clip_id)
            continue
        split = c.split or default_split
        if split is None:
            summary.unsplit.append(c.clip_id)
            continue
        by_split[split].append((c, f))
    out.mkdir(parents=True, exist_ok=True)
    for split, items in by_split.items():
        if not items:
            continue
        n = len(items)
        feats = {s.name: np.zeros((n, T, s.dim), np.float32) for s in specs}
        masks = {s.name: np.zeros((n, T), np.uint8) for s in specs}
        for i, (_, f) in enumerate(items):
            x, m, meta = read_clip_file(f)
            got = [ModalitySpec.from_json(d) for d in meta["modalities"]]
            if got != specs:
                raise PackError(
                    f"{f}: modalities {got} differ from {rec_path} ({specs}); re-extract this clip"
                )
            for s in specs:
                if x[s.name].shape != (T, s.dim):
                    raise PackError(f"{f}: {s.name} has shape {x[s.name].shape}, expected {(T, s.dim)}")
                feats[s.name][i] = x[s.name]
                masks[s.name][i] = m[s.name]
        header = StoreHeader(
            modalities=specs,
            T=T,
            n=n,
            dataset=dataset or Path(manifest).stem,
            synthetic=False,
            provenance={
                "features": str(features_dir.resolve()),
                "manifest": str(Path(manifest).resolve()),
                "extraction": rec["config"],
                "packed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
        write_split(out / split, header, feats, masks, [index_row(c) | {"split": split} for c, _ in items])
        summary.counts[split] = n
    if not summary.counts:
        raise PackError(
            f"{features_dir}: no clip of {manifest} has both features and a split; nothing packed"
        )
    return summary
