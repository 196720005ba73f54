"""One decode pass per video for shots and for the sampled frames (faces, subtitle band, shot looks).

PySceneDetect must see every frame; the build's other stages need ~3 frames a second. Decoding the
file twice (once for PySceneDetect, once for the samples) cost a third of the build, so `ShotScan`
runs PySceneDetect's own `SceneManager` in a background thread on a PyAV stream that hands each
sampled frame to the caller as it goes by (`_TeeStream.read`). The caller's face detection and OCR
then run on one core while decoding and shot detection run on the other.

The caller needs each sampled frame's shot index (face tracks end at cuts). Detectors report a cut
some frames after it happened (PySceneDetect's flash filter merges cuts closer than `min_scene_len`),
so a sampled frame is handed out only once the detector has processed `settle` seconds beyond it;
its shot index is then final unless a cut arrives later still. `ShotScan.consistent()` checks every
handed-out index against the final scene list; when one differs (a pathological flash sequence),
the caller redoes the sampled pass with the final cuts (run.py), so results never depend on timing.

Cuts and scene list are PySceneDetect's own (same SceneManager, detector, PyAV backend and frame
threading as `shots.detect_shots`), so they match its golden files exactly; the tests check that.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from perr.construct.shots import SHOT_DETECTORS, Shot, pyav_stream_class
from perr.logs import quiet_ffmpeg
from perr.video import Frame, PtsRepair, VideoError, clock_origin, fit_size

_DONE = object()


def shot_index(starts: list[float], t: float) -> int:
    """Index of the shot holding time t, given the shots' start times (ascending)."""
    return max(0, bisect.bisect_right(starts, t + 1e-6) - 1)


class ShotScan:
    """Iterate ``(Frame, shot_index)`` for one sample per 1/fps s while PySceneDetect finds the shots.

    After iteration: ``shots`` (list[Shot]), ``scenes``/``cuts`` (PySceneDetect's objects, for its CSV
    writer), ``problems`` (timestamp repairs), and ``consistent()``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        detector: str = "content",
        threshold: float | None = None,
        min_scene_len: int = 15,
        fps: float = 3.0,
        max_side: int | None = 720,
        settle: float = 2.0,
        threading_mode: str = "AUTO",
        start: float = 0.0,
    ) -> None:
        self.path = path
        self.start = start  # seconds: decode (and detect) from here; chunks of a long video start later
        self.spec = SHOT_DETECTORS.get(detector)
        self.threshold, self.min_scene_len = threshold, min_scene_len
        self.step = 1.0 / fps
        self.max_side = max_side
        self.settle = settle
        # PyAV decoder threads: "AUTO" (frame threads; fastest for one video at a time) or "SINGLE"
        # (one thread: ~12% less CPU per video, better when several videos run in parallel processes)
        self.threading_mode = threading_mode
        self.shots: list[Shot] = []
        self.scenes: list[Any] = []
        self.cuts: list[Any] = []
        self.problems: list[str] = []
        self.handed: list[tuple[float, int]] = []  # (time, shot index given) for consistent()
        self._cond = threading.Condition()
        self._cut_times: list[float] = []
        self._processed = -1.0  # seconds of the last frame the detector has seen
        self._finished = False
        self._error: BaseException | None = None
        self._samples: queue.Queue[Any] = queue.Queue(maxsize=max(16, int(4 * settle * fps) + 8))

    # -- the background shot pass --------------------------------------------------------------
    def _open(self) -> Any:
        import av
        import scenedetect

        scan = self

        class _TeeStream(pyav_stream_class()):  # type: ignore[misc]
            """PySceneDetect's PyAV stream that also emits the sampled frames, PTS-repaired like
            `VideoReader` (frames in decode order paired with their sorted times)."""

            def __init__(self, *a: Any, **kw: Any) -> None:
                super().__init__(*a, **kw)
                vs = self._container.streams.video[0]
                if scan.threading_mode == "SINGLE":
                    vs.codec_context.thread_count = 1
                self._size = fit_size(vs.codec_context.width, vs.codec_context.height, scan.max_side)
                self._repair = PtsRepair(float(vs.time_base), clock_origin(self._container))
                self._next_k: int | None = None  # index of the next sample time k / fps
                self._index = 0

            def read(self, decode: bool = True) -> np.ndarray | bool:
                out = super().read(decode)
                fr = self._frame
                if out is False or fr is None:
                    self.flush()
                    return out
                for frame, t in self._repair.push(fr):
                    self._emit(frame, t)
                return out

            def flush(self) -> None:
                for frame, t in self._repair.flush():
                    self._emit(frame, t)
                if self._repair.shuffled and not scan.problems:
                    scan.problems.append(
                        "frame timestamps out of order (packed B-frames or a broken index); times were re-sorted"
                    )

            def _emit(self, fr: Any, t: float) -> None:
                """Hand out the first frame at or after each sample time k / fps. Sample times are an
                absolute grid (k · step from time 0), so a chunk decoded from the middle of a video
                samples exactly the frames a pass from the start does."""
                index = self._index
                self._index += 1
                if self._next_k is None:  # from the file's start, sample 0 is its first frame
                    self._next_k = 0 if scan.start <= 0 else math.ceil((t - 1e-6) / scan.step)
                if t < self._next_k * scan.step - 1e-6:
                    return
                self._next_k = math.floor((t + 1e-6) / scan.step) + 1
                kw = {} if self._size is None else {"width": self._size[0], "height": self._size[1]}
                scan._samples.put(Frame(index, t, fr.to_ndarray(format="rgb24", threads=1, **kw)))

        class _WatchedManager(scenedetect.SceneManager):
            """SceneManager that publishes how far detection got and the cuts so far."""

            def _process_frame(self, position: Any, frame_im: Any, callback: Any = None) -> bool:
                new = super()._process_frame(position, frame_im, callback)
                with scan._cond:
                    if new:
                        scan._cut_times = sorted(float(c.seconds) for c in self._cutting_list)
                    scan._processed = float(position.seconds)
                    scan._cond.notify_all()
                return new

        try:
            threads = None if self.threading_mode == "SINGLE" else self.threading_mode
            video = _TeeStream(str(self.path), threading_mode=threads)
        except (scenedetect.VideoOpenFailure, OSError, RuntimeError, av.error.FFmpegError) as e:
            raise VideoError(self.path, f"PySceneDetect cannot open it: {e}") from e
        quiet_ffmpeg()  # PySceneDetect restores FFmpeg's terminal callback when it opens a stream
        if self.start > 0:
            video.seek(self.start)
        sm = _WatchedManager()
        sm.add_detector(self.spec.make(self.threshold, self.min_scene_len))
        return video, sm

    def _run(self, video: Any, sm: Any) -> None:
        try:
            sm.detect_scenes(video=video, show_progress=False)
            video.flush()
            self.scenes = sm.get_scene_list(start_in_scene=True)
            self.cuts = sm.get_cut_list()
        except BaseException as e:  # re-raised in the consumer's thread
            self._error = e
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()
            self._samples.put(_DONE)

    # -- the consumer side -----------------------------------------------------------------------
    def _known_starts(self, t: float) -> list[float]:
        """Wait until every cut up to time t is (very probably) known; return the shot starts."""
        with self._cond:
            self._cond.wait_for(lambda: self._finished or self._processed >= t + self.settle)
            return [0.0, *self._cut_times]

    def __iter__(self) -> Iterator[tuple[Frame, int]]:
        video, sm = self._open()
        worker = threading.Thread(target=self._run, args=(video, sm), name="perr-shot-scan", daemon=True)
        worker.start()
        try:
            while True:
                item = self._samples.get()
                if item is _DONE:
                    break
                si = shot_index(self._known_starts(item.time), item.time)
                self.handed.append((item.time, si))
                yield item, si
        finally:
            if worker.is_alive():  # consumer stopped early: end the pass, never abandon it
                sm.stop()
                while worker.is_alive():
                    with contextlib.suppress(queue.Empty):
                        self._samples.get(timeout=0.05)
            worker.join()
            self.shots = [
                Shot(i, float(s.seconds), float(e.seconds), int(s.frame_num), int(e.frame_num))
                for i, (s, e) in enumerate(self.scenes)
            ]
        if self._error is not None:
            e = self._error
            if isinstance(e, VideoError):
                raise e
            raise VideoError(self.path, f"shot detection failed: {type(e).__name__}: {e}") from e
        if not self.scenes:
            raise VideoError(self.path, "no frame could be decoded for shot detection")

    @property
    def cut_times(self) -> list[float]:
        """The cuts found so far (seconds), as the consumer sees them."""
        with self._cond:
            return list(self._cut_times)

    def consistent(self) -> bool:
        """Whether every handed-out shot index agrees with the final shot list (call after iterating)."""
        starts = [s.start for s in self.shots]
        return all(shot_index(starts, t) == si for t, si in self.handed)
