"""Each distinct text embedded once, cached on disk by the SHA-256 of the text, so rebuilding a store with
another T re-embeds nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from perr.io import atomic_path, write_json
from perr.text_embedders import TextEmbedder


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_unique(
    texts: Sequence[str],
    embedder: TextEmbedder,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = 512,
) -> tuple[np.ndarray, dict[str, int]]:
    """Embed each distinct text once → (matrix [U, dim] float32, text → row).

    With `cache_dir`, vectors persist in `<cache_dir>/<embedder>-<version>/` keyed by the SHA-256 of
    the text, and only texts never seen before are encoded (written atomically at the end, also when
    interrupted, so a killed run keeps what it did).
    """
    unique = list(dict.fromkeys(texts))
    row = {t: i for i, t in enumerate(unique)}
    out = np.zeros((len(unique), embedder.dim), dtype=np.float32)
    cached: dict[str, np.ndarray] = {}
    folder = Path(cache_dir) / f"{embedder.name}-{embedder.version}" if cache_dir is not None else None
    keys: list[str] = []
    vecs = np.zeros((0, embedder.dim), dtype=np.float32)
    if folder is not None and (folder / "keys.json").exists():
        keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
        vecs = np.load(folder / "vectors.npy")
        if len(keys) != len(vecs):  # a torn cache is ignored, never trusted
            keys, vecs = [], np.zeros((0, embedder.dim), dtype=np.float32)
        cached = {k: vecs[i] for i, k in enumerate(keys)}
    todo = []
    for t in unique:
        v = cached.get(_text_key(t))
        if v is None:
            todo.append(t)
        else:
            out[row[t]] = v
    new_keys: list[str] = []
    new_vecs: list[np.ndarray] = []
    try:
        for start in range(0, len(todo), chunk):
            batch = todo[start : start + chunk]
            emb = embedder.encode(batch)
            for t, v in zip(batch, emb, strict=True):
                out[row[t]] = v
            new_keys += [_text_key(t) for t in batch]
            new_vecs.append(emb.astype(np.float32))
            if progress is not None:
                progress(min(start + chunk, len(todo)), len(todo))
    finally:  # keep what was embedded, also when interrupted
        if folder is not None and new_keys:
            folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(folder / "vectors.npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, np.concatenate([vecs, *new_vecs]))
            write_json(folder / "keys.json", keys + new_keys, indent=0)
    return out, row
