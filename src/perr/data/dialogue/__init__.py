"""Dialogue corpora (MELD and any corpus in the same CSV) as PERR-shaped clips in a packed feature store.

The CSV format and the utterance → clip mapping are documented in :mod:`.corpus`; modules:
:mod:`.corpus` (read/write the CSV), :mod:`.tasks`, :mod:`.embeddings` (embed once, cached),
:mod:`.assemble` (windows of past utterances), :mod:`.store` (build and cache stores).
"""

from perr.data.dialogue.assemble import SplitClips, assemble_split, modality_names
from perr.data.dialogue.corpus import (
    DEFAULT_T,
    DIALOGUE_MODALITIES,
    REQUIRED_COLUMNS,
    TARGET_MODALITY,
    DialogueCorpus,
    DialogueError,
    Utterance,
    read_dialogue_csv,
    write_dialogue_csv,
)
from perr.data.dialogue.embeddings import embed_unique
from perr.data.dialogue.store import build_store, convert_meld, ensure_store, resolve_dialogue_source
from perr.data.dialogue.tasks import derive_tasks, known_corpora

__all__ = [
    "DEFAULT_T",
    "DIALOGUE_MODALITIES",
    "REQUIRED_COLUMNS",
    "TARGET_MODALITY",
    "DialogueCorpus",
    "DialogueError",
    "SplitClips",
    "Utterance",
    "assemble_split",
    "build_store",
    "convert_meld",
    "derive_tasks",
    "embed_unique",
    "ensure_store",
    "known_corpora",
    "modality_names",
    "read_dialogue_csv",
    "resolve_dialogue_source",
    "write_dialogue_csv",
]
