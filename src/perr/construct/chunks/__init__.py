"""A long video in chunks, so that several worker processes share one episode.

One module per job: :mod:`.plan` cuts the video at keyframes (:func:`plan_chunks`), :mod:`.scan` decodes
one chunk once and does the sampled-frame work over the shots it owns (:func:`scan_chunk` →
:class:`ChunkResult`), :mod:`.merge` puts a video's chunks together into what one pass over the whole
video gives (:func:`merge_chunks` → :class:`MergedChunks`), and :mod:`.files` keeps a finished chunk on
disk so that a killed build resumes (:func:`save_chunk`, :func:`load_chunk`). In perr, "scan" is the
decode pass (:class:`perr.construct.scan.ShotScan`): a chunk is scanned once.
"""

from perr.construct.chunks.files import load_chunk, save_chunk, saved_chunks, start_partial
from perr.construct.chunks.merge import MergedChunks, merge_chunks
from perr.construct.chunks.plan import CHUNK_SECONDS, WARMUP, Chunk, plan_chunks
from perr.construct.chunks.scan import OCR_TAIL, ChunkResult, scan_chunk

__all__ = [
    "CHUNK_SECONDS",
    "OCR_TAIL",
    "WARMUP",
    "Chunk",
    "ChunkResult",
    "MergedChunks",
    "load_chunk",
    "merge_chunks",
    "plan_chunks",
    "save_chunk",
    "saved_chunks",
    "scan_chunk",
    "start_partial",
]
