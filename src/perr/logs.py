"""Keep the libraries' own chatter off the user's terminal unless `--verbose` asks for it.

MediaPipe and TensorFlow Lite print from C++ straight to file descriptor 2 when a graph starts ("INFO:
Created TensorFlow Lite XNNPACK delegate", absl's "All log messages before absl::InitializeLog()",
"inference_feedback_manager … Disabling support for feedback tensors"); no environment variable turns
them off. :func:`native_noise_filtered` catches fd 2 while models load and warm up, drops those known
lines and passes everything else through. Python-side loggers (absl, RapidOCR, onnxruntime) are set to
errors only, and FFmpeg's messages are off (:func:`quiet_ffmpeg`). The choice travels to worker processes in
``PERR_VERBOSE``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

ENV = "PERR_VERBOSE"
NOISE = (
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate"),
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called"),
    re.compile(r"^[IW]\d{4} .*(inference_feedback_manager|gl_context|landmark_projection_calculator)"),
)


def verbose() -> bool:
    return os.environ.get(ENV) == "1"


def quiet_libraries(verbose_: bool = False) -> None:
    """Errors only from the libraries (or everything with `verbose_`), here and in worker processes."""
    os.environ[ENV] = "1" if verbose_ else "0"
    level = logging.INFO if verbose_ else logging.ERROR
    for name in ("absl", "RapidOCR", "onnxruntime", "libav", "numba"):
        logging.getLogger(name).setLevel(level)
    if not verbose_:
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # OpenCV's own FFmpeg (perr reports the error)
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    with contextlib.suppress(ImportError):
        quiet_ffmpeg(verbose_)


def quiet_ffmpeg(verbose_: bool | None = None) -> None:
    """Keep FFmpeg's messages away from Python: off, or (`verbose_`, default :func:`verbose`) printed
    by FFmpeg's own C callback.

    Why not PyAV's Python callback at some level: it takes the GIL for every message, and it passes
    errors through at any level. A decoder thread that logs while the main thread, holding the GIL,
    closes the frame-threaded decoder waits for the GIL, and the main thread waits for that thread: a
    hang for ever (PyAV issue 909). Seen here as a CI build that never finished; reproduced in a loop on the
    1-minute episode (opened with frame threads, a seek, some frames read, closed): with the callback at
    ERROR it hung at iterations 27 and 51; with no callback, 400 of 400 finished. Call it again after
    anything that opens a PySceneDetect stream, which restores FFmpeg's terminal callback on opening.
    """
    import av

    av.logging.set_level(None)
    if verbose() if verbose_ is None else verbose_:
        av.logging.restore_default_callback()
        av.logging.set_libav_level(av.logging.INFO)


@contextlib.contextmanager
def native_noise_filtered() -> Iterator[None]:
    """Catch what native code writes to fd 2 inside the block; re-emit all but the known noise."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            for line in tmp.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not any(p.search(line) for p in NOISE):
                    print(line, file=sys.stderr)
