"""The packed feature store: what training reads.

Layout of one split folder (e.g. `features/train/`):

    header.json              modalities (name, dim, extractor, version), T, N, tasks, provenance
    index.parquet            one row per clip: row, clip_id, label columns, drama, ...
    <modality>.npy           float16 [N, T, d_m], memory-mapped (or read by rows) on read
    <modality>.mask.npy      uint8   [N, T]; 0 = evidence missing (feature row is zeros)
    texts.json, <modality>.text.npy   optional step texts (header `step_texts`): the raw text behind a
                             text modality's vector at each step, as int32 [N, T] ids into texts.json
                             (-1 = none), so a text encoder can be fine-tuned (`text_encoder=finetune`).
                             A step text may carry past context after its line: "line | earlier | …"
                             (CONTEXT_SEPARATOR; lines never contain it), which `text_pooling=line` reads

A store root holds one such folder per split (`train/`, `val/`, `test/`). Folders are written under
a temp name, chunk by chunk (:class:`SplitWriter`), and renamed, so a store is either complete or
absent. Plain `.npy` files keep the store readable from any language with a NumPy reader; the header
makes a mismatch with a model's config a clear error instead of a silent wrong answer.

One module per part: :mod:`.header` (what a split holds), :mod:`.rowfile` (every read and write of the
arrays, by rows: the one read path), :mod:`.writer` (a split written chunk by chunk) and :mod:`.reader`
(a split and a store root, read).
"""

from perr.store.header import CONTEXT_SEPARATOR, FORMAT_VERSION, SPLITS, ModalitySpec, StoreError, StoreHeader
from perr.store.reader import FeatureSplit, FeatureStore
from perr.store.rowfile import LOAD_AHEAD, RowFile
from perr.store.writer import SplitWriter, write_split

__all__ = [
    "CONTEXT_SEPARATOR",
    "FORMAT_VERSION",
    "LOAD_AHEAD",
    "SPLITS",
    "FeatureSplit",
    "FeatureStore",
    "ModalitySpec",
    "RowFile",
    "SplitWriter",
    "StoreError",
    "StoreHeader",
    "write_split",
]
