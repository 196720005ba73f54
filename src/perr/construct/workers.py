"""The build's units of work and the pools that run them: chunks of videos and batches of descriptors.

A chunk (:mod:`perr.construct.chunks`) is decoded and analysed in a worker process that holds its own
detectors; its result goes straight to the output folder's ``.partial/<video>/`` (JSON + NPZ, written
atomically), so a killed run resumes from the chunks it finished and nothing large travels back through
the pool. Identity descriptors (dlib's network run in torch, ~9 ms a face crop: perr.faces.dlib_resnet) are batches of
tracks sent to the same workers once a video's chunks are merged.

Workers are spawned (not forked: the detectors' native threads do not survive fork), load the models
once and decode single-threaded (the parallelism is across chunks and videos). Each holds ~0.55 GB
(MediaPipe, RapidOCR, dlib). A worker that dies (a native crash on a broken file) breaks the pool: the
units still queued are run again in a fresh pool, and a unit that breaks a pool twice fails alone.
Units run on any executor of :mod:`perr.execution` (this process, local workers or Ray tasks).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.chunks import Chunk, save_chunk, scan_chunk
from perr.construct.config import BuildConfig
from perr.construct.pipeline import Detectors, Timer, process_video
from perr.execution import ExecutionConfig, Executor, make_executor
from perr.faces import FaceBox, mean_descriptors
from perr.faults import checkpoint_reached
from perr.logs import quiet_libraries, verbose
from perr.video import VideoError

_DETECTORS: Detectors | None = None  # this process's models
Crops = list[tuple[np.ndarray, FaceBox]]  # one track's kept face crops, each with the face box inside it


def init_worker(cfg: BuildConfig, warmup: str | None = None, decode_threading: str = "SINGLE") -> None:
    """Load this process's detectors (and warm them on a video, so timings exclude first-call costs)."""
    global _DETECTORS
    quiet_libraries(verbose())  # spawned: the parent's choice comes in PERR_VERBOSE
    _DETECTORS = Detectors(cfg, decode_threading=decode_threading)
    if warmup:
        _ = _DETECTORS.ocr
        with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(Exception):
            process_video(
                Path(warmup), "warmup", Path(tmp), cfg, _DETECTORS
            )  # a bad warm-up file only costs time


def run_chunk(
    path: str,
    cfg: BuildConfig,
    chunk: Chunk,
    duration: float,
    ocr: bool,
    partial: str,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Scan one chunk and write its result under `partial`; errors come back as text (the batch goes on)."""
    assert _DETECTORS is not None, "worker not initialised"
    timer = Timer()
    try:
        scan = scan_chunk(
            Path(path),
            cfg,
            chunk,
            _DETECTORS.face,
            _DETECTORS.ocr if ocr else None,
            duration,
            timer,
            _DETECTORS.decode_threading,
            progress,
            person=_DETECTORS.person,
        )
        save_chunk(scan, Path(partial))
    except VideoError as e:
        return {"ok": False, "error": e.reason}
    except Exception as e:
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    checkpoint_reached("build.chunk")
    return {"ok": True, "timer": timer.to_json()}


def run_embed(tracks: list[Crops]) -> list[np.ndarray | None]:
    """The mean dlib descriptor of each track's crops (None for a track without crops)."""
    return mean_descriptors(tracks)


def close_worker() -> None:
    """Release this process's detectors (the inline executor's end)."""
    global _DETECTORS
    if _DETECTORS is not None:
        _DETECTORS.close()
        _DETECTORS = None


def build_executor(
    cfg: BuildConfig, execution: ExecutionConfig, run_dir: Path, warmup: str | os.PathLike | None = None
) -> Executor:
    """The executor of a build: workers load the detectors once (decoding single-threaded: the
    parallelism is across chunks); in this process (one job) decoding uses FFmpeg's threads."""
    inline = execution.backend == "inline" or (execution.backend == "local" and execution.workers() == 1)
    args = (cfg, None if warmup is None else str(warmup), "AUTO" if inline else "SINGLE")
    return make_executor(execution, run_dir, init_worker, args, finalizer=close_worker)
