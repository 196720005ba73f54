"""The build's units of work and the pools that run them: chunks of videos and batches of descriptors.

A chunk (:mod:`perr.construct.chunks`) is decoded and analysed in a worker process that holds its own
detectors; its result goes straight to the output folder's ``.partial/<video>/`` (JSON + NPZ, written
atomically), so a killed run resumes from the chunks it finished and nothing large travels back through
the pool. Identity descriptors (dlib, ~0.09 s a face crop, the build's largest single cost) are batches of
tracks sent to the same workers once a video's chunks are merged.

Workers are spawned (not forked: the detectors' native threads do not survive fork), load the models
once and decode single-threaded (the parallelism is across chunks and videos). Each holds ~0.55 GB
(MediaPipe, RapidOCR, dlib). A worker that dies (a native crash on a broken file) breaks the pool: the
units still queued are run again in a fresh pool, and a unit that breaks a pool twice fails alone.
`InlinePool` runs the same units in this process (``--jobs 1``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from perr.construct.chunks import Chunk, save_chunk, scan_chunk
from perr.construct.config import BuildConfig
from perr.construct.pipeline import Detectors, Timer, process_video
from perr.faces import FaceBox, embed_faces
from perr.faults import checkpoint_reached
from perr.logs import quiet_libraries, verbose
from perr.video import VideoError

_DETECTORS: Detectors | None = None  # this process's models
Crops = list[tuple[np.ndarray, FaceBox]]  # one track's kept face crops, each with the face box inside it


def default_jobs(n_videos: int | None = None) -> int:
    """Worker processes: one per usable core, at most 4 (each holds its own models)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4, n_videos or cores))


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
    out: list[np.ndarray | None] = []
    for crops in tracks:
        vecs = [embed_faces(crop, [box])[0] for crop, box in crops]
        out.append(np.mean(vecs, axis=0) if vecs else None)
    return out


def _ping(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


class BuildPool:
    """`jobs` worker processes for `cfg` (models loaded, optionally warmed on a video)."""

    def __init__(self, cfg: BuildConfig, jobs: int, warmup: str | os.PathLike | None = None) -> None:
        self.cfg, self.jobs = cfg, jobs
        self._warmup = None if warmup is None else str(warmup)
        self._ex = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.jobs,
            mp_context=mp.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.cfg, self._warmup),
        )

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._ex.submit(fn, *args)

    def renew(self) -> None:
        """A fresh set of workers after one died (the executor cannot be used again)."""
        self._ex.shutdown(cancel_futures=True)
        self._ex = self._new()

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Block until every worker has started and loaded its models (so timings exclude start-up)."""
        pids: set[int] = set()
        t_end = time.monotonic() + timeout
        while len(pids) < self.jobs and time.monotonic() < t_end:
            pids.update(f.result() for f in [self._ex.submit(_ping, 0.5) for _ in range(self.jobs)])

    def close(self) -> None:
        self._ex.shutdown(cancel_futures=True)

    def __enter__(self) -> BuildPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InlinePool:
    """The same units run here, one after another (``--jobs 1``, and `perr predict`)."""

    jobs = 1

    def __init__(self, cfg: BuildConfig, decode_threading: str = "AUTO") -> None:
        init_worker(cfg, decode_threading=decode_threading)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as e:
            fut.set_exception(e)
        return fut

    def renew(self) -> None:
        return None

    def close(self) -> None:
        if _DETECTORS is not None:
            _DETECTORS.close()

    def __enter__(self) -> InlinePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
