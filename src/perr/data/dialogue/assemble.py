"""Utterances → PERR-shaped clips: right-aligned windows of the last T utterances up to each target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from perr.data.dialogue.corpus import DIALOGUE_MODALITIES, TARGET_MODALITY, Utterance
from perr.store import CONTEXT_SEPARATOR


def modality_names(with_target: bool = False) -> list[str]:
    return [*DIALOGUE_MODALITIES, TARGET_MODALITY] if with_target else list(DIALOGUE_MODALITIES)


def target_texts(dialogues: Sequence[Sequence[Utterance]], context: int = 0) -> list[str]:
    """The text of the `target` modality for every utterance (in dialogue order).

    With `context` = 0 it is the utterance itself. With `context` = K > 0 it is the utterance and then up
    to K utterances before it, most recent first, each as "speaker: text", joined by
    ``CONTEXT_SEPARATOR`` (a "|" inside a line becomes "/", so the first separator always ends the
    classified line) — the past-context input of EmoBERTa (Kim & Vossen, 2021), read by one encoder so
    its attention relates the classified line to what was just said. The classified line comes first so
    an encoder that truncates on the right drops the oldest context, never the line itself.
    """
    if context < 0:
        raise ValueError(f"target_context must be >= 0, got {context}")
    out: list[str] = []
    for d in dialogues:
        for k, u in enumerate(d):
            if context == 0:
                out.append(u.text)
                continue
            past = (d[j] for j in range(k, max(k - context, 0) - 1, -1))
            lines = [f"{p.speaker}: {p.text}".replace("|", "/") for p in past]
            out.append(CONTEXT_SEPARATOR.join(lines))
    return out


@dataclass
class SplitClips:
    """One split's clips: features/masks per modality and the index rows, ready for `write_split`."""

    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    index: list[dict[str, Any]] = field(default_factory=list)
    text_ids: dict[str, np.ndarray] = field(default_factory=dict)  # [N, T] row of each step's text, -1 none


def assemble_split(
    dialogues: Sequence[Sequence[Utterance]],
    vectors: np.ndarray,
    row_of: Mapping[str, int],
    T: int,
    with_target: bool = False,
    target_context: int = 0,
) -> SplitClips:
    """Right-aligned windows of the last T utterances up to each target (module doc), vectorised.

    Step j of clip (dialogue d, position k) holds position k - (T-1-j) of d, or padding when negative.
    The `target` modality (`with_target`) holds :func:`target_texts` with `target_context`.
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
    present = {"speaker": same, "others": other}
    if with_target:
        present[TARGET_MODALITY] = valid
    target_row = text_row
    if with_target and target_context > 0:
        target_row = np.fromiter(
            (row_of[t] for t in target_texts(dialogues, target_context)), dtype=np.int64, count=n
        )
    text_ids = {
        m: np.where(p, target_row[:, None] if m == TARGET_MODALITY else rows, -1).astype(np.int32)
        for m, p in present.items()
    }
    features = {m: table[np.where(ids >= 0, ids, zero)] for m, ids in text_ids.items()}
    masks = {m: p.astype(np.uint8) for m, p in present.items()}
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
    return SplitClips(features=features, masks=masks, index=index, text_ids=text_ids)
