"""Several videos at once: a pool of worker processes, each holding its own detectors.

Within one video the build is partly serial (dlib's identity network holds the GIL; tracking and the
OCR gate are Python), so one video keeps ~1.5 of 2 cores busy. Running videos in parallel processes
fills the rest: on the real clips of ../shared/data, 2 workers on 2 cores build 12.0× real time against
9.2× in one process (benchmarks/build_speed.py). Each worker holds ~0.55 GB (MediaPipe, RapidOCR, dlib).
Workers are spawned (not forked: the detectors' native threads do not survive fork), load the models
once, and decode single-threaded (the parallelism is across videos).

A worker that dies (a native crash on a broken file) takes only its video with it: the videos that
were still queued on the broken pool are retried one at a time in a fresh one-worker pool.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from perr.construct.config import BuildConfig
from perr.construct.outputs import build_video
from perr.construct.pipeline import Detectors, VideoResult, process_video

_DETECTORS: Detectors | None = None  # the worker process's models


def default_jobs(n_videos: int | None = None) -> int:
    """Worker processes: one per usable core, at most 4 (each holds its own models), at most n_videos."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4, n_videos or cores))


def _init_worker(cfg: BuildConfig, warmup: str | None) -> None:
    global _DETECTORS
    import av

    av.logging.set_level(av.logging.ERROR)
    _DETECTORS = Detectors(cfg, decode_threading="SINGLE")
    if warmup:  # first-call costs (ONNX graph init, lazy imports) paid before any timed work
        _ = _DETECTORS.ocr
        with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(Exception):
            process_video(
                Path(warmup), "warmup", Path(tmp), cfg, _DETECTORS
            )  # a bad warm-up file only costs time


def _ping(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def run_one(path: str, key: str, out: str, cfg: BuildConfig) -> VideoResult:
    """One video in a worker (errors become a failed VideoResult)."""
    assert _DETECTORS is not None, "worker not initialised"
    return build_video(Path(path), key, Path(out), cfg, _DETECTORS)


class BuildPool:
    """A warm pool of `jobs` worker processes for `cfg` (models loaded, optionally warmed on a video)."""

    def __init__(self, cfg: BuildConfig, jobs: int, warmup: str | os.PathLike | None = None) -> None:
        self.cfg, self.jobs = cfg, jobs
        self._warmup = None if warmup is None else str(warmup)
        self._ex = self._new(jobs)

    def _new(self, jobs: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            jobs,
            mp_context=mp.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.cfg, self._warmup),
        )

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Block until every worker has started and loaded its models (so timings exclude start-up)."""
        pids: set[int] = set()
        t_end = time.monotonic() + timeout
        while len(pids) < self.jobs and time.monotonic() < t_end:
            pids.update(f.result() for f in [self._ex.submit(_ping, 0.5) for _ in range(self.jobs)])

    def map_videos(
        self,
        todo: Iterable[tuple[Path, str]],
        out: Path,
        on_done: Callable[[VideoResult], None] | None = None,
    ) -> list[VideoResult]:
        """Build every (path, key), longest files first; results in completion order."""
        todo = sorted(todo, key=lambda pk: -_size(pk[0]))
        results: list[VideoResult] = []
        retry: list[tuple[Path, str]] = []

        def collect(futs: dict[Future, tuple[Path, str]], requeue: bool) -> None:
            for fut in as_completed(futs):
                path, key = futs[fut]
                try:
                    res = fut.result()
                except BrokenProcessPool as e:
                    if requeue:
                        retry.append((path, key))
                        continue
                    res = VideoResult(str(path), key, "failed", error=f"worker process died: {e}")
                results.append(res)
                if on_done is not None:
                    on_done(res)

        collect({self._ex.submit(run_one, str(p), k, str(out), self.cfg): (p, k) for p, k in todo}, True)
        if retry:  # the pool broke: isolate the crashing video by giving each its own worker
            self._ex.shutdown(cancel_futures=True)
            for p, k in retry:
                ex = self._new(1)
                self._ex = ex
                collect({ex.submit(run_one, str(p), k, str(out), self.cfg): (p, k)}, False)
                ex.shutdown()
            self._ex = self._new(self.jobs)
        return results

    def close(self) -> None:
        self._ex.shutdown(cancel_futures=True)

    def __enter__(self) -> BuildPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
