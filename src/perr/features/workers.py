"""Extraction of all modalities for one clip, and the unit of work the extract job hands to its workers: the clips
of one video (a time run of them) from one decode (:mod:`perr.features.video_pass`), each written to
``DIR/clips/<clip>.npz`` (atomically) or ``DIR/errors/<clip>.json``. The job is :mod:`perr.features.job`.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from perr.device import resolve_device
from perr.faults import checkpoint_reached
from perr.features import extractors as _extractors  # noqa: F401  (registers every extractor)
from perr.features.base import EXTRACTORS, ClipContext, Extractor
from perr.features.config import ExtractConfig
from perr.features.files import ClipFeatures, clip_filename, write_clip_file
from perr.features.video_pass import ClipError, extract_group
from perr.io import write_json
from perr.logs import quiet_libraries
from perr.manifest import Clip
from perr.store import ModalitySpec


def build_extractors(cfg: ExtractConfig, device: str = "cpu") -> dict[str, Extractor]:
    """modality name → extractor instance, each the registered extractor `cfg.extractors` names
    (``person_a`` and ``person_b`` share one person analysis). Torch models run on `device`."""
    shared: dict[str, Any] = {"device": device}
    return {m: EXTRACTORS.get(cfg.extractors[m]).create(cfg, m, shared) for m in cfg.modalities}


def modality_specs(extractors: dict[str, Extractor]) -> list[ModalitySpec]:
    return [e.spec(m) for m, e in extractors.items()]


def extract_context(
    ctx: ClipContext,
    cfg: ExtractConfig,
    extractors: dict[str, Extractor],
    lanes: int = 1,
    decoded: float = 0.0,
) -> ClipFeatures:
    """All modalities of one prepared clip (its frames may already be decoded by the video pass, whose
    share of decoding time is `decoded`); per-step timings kept.

    ``lanes=2`` runs the background network beside the other extractors in a second thread (torch and
    MediaPipe release the GIL), so one clip uses both cores of a 2-core machine; the features are the
    same. Per-extractor CPU times are recorded only with ``lanes=1`` (threads share the process clock).
    """
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    feats: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}

    def timed(key: str, fn: Callable[[], Any]) -> Any:
        s, c = time.perf_counter(), time.process_time()
        r = fn()
        seconds[key] = time.perf_counter() - s
        if lanes == 1:
            cpu[key] = time.process_time() - c
        return r

    def run(names: list[str]) -> None:
        for m in names:
            ex = extractors[m]
            x, k = timed(m, lambda ex=ex: ex.extract(ctx))
            if x.shape != (ctx.T, ex.dim) or k.shape != (ctx.T,):
                raise RuntimeError(
                    f"extractor {ex.extractor_id} returned {x.shape}/{k.shape}, expected {(ctx.T, ex.dim)}/{(ctx.T,)}"
                )
            feats[m], masks[m] = x, k

    if any(e.needs_frames for e in extractors.values()):
        if "frames" in ctx.cache:
            seconds["decode_video"] = decoded
        else:
            timed("decode_video", lambda: ctx.frames)
    if any(e.needs_audio for e in extractors.values()):
        timed("decode_audio", lambda: ctx.audio)
    names = list(extractors)
    side = [m for m in names if m == "background"]
    if lanes > 1 and side and len(side) < len(names):
        with ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(run, side)
            run([m for m in names if m not in side])
            fut.result()
    else:
        run(names)
    feats = {m: feats[m] for m in names}
    masks = {m: masks[m] for m in names}
    return ClipFeatures(
        ctx.clip.clip_id, feats, masks, ctx.times, ctx.valid, seconds, ctx.end - ctx.start, cpu
    )


def extract_clip(
    clip: Clip, base: Path, cfg: ExtractConfig, extractors: dict[str, Extractor], lanes: int = 1
) -> ClipFeatures:
    """All modalities of one clip on its own (`perr predict`, benchmarks): its frames and audio decoded once."""
    ctx = ClipContext(clip, base, sampling=cfg.sampling, frame_max_side=cfg.frame_max_side)
    return extract_context(ctx, cfg, extractors, lanes)


def planned_specs(cfg: ExtractConfig) -> list[ModalitySpec]:
    """The ModalitySpecs a config produces, without loading any model."""
    return modality_specs(build_extractors(cfg))


# -- one unit of work: the clips of one video (a run of them), the same on every backend ----------------
_WORKER_EXTRACTORS: dict[str, dict[str, Extractor]] = {}


def worker_extractors(cfg: ExtractConfig, device: str = "cpu") -> dict[str, Extractor]:
    """Extractors of this process for `cfg`, loaded once and reused for every clip it handles."""
    key = json.dumps([cfg.to_json(), device], sort_keys=True)
    if key not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS[key] = build_extractors(cfg, device)
    return _WORKER_EXTRACTORS[key]


def init_worker(threads: int | None, verbose_: bool = False) -> None:
    """A worker process: its torch thread count and the libraries' log level."""
    import torch

    quiet_libraries(verbose_)
    if threads:
        torch.set_num_threads(threads)


def process_group(
    clips_json: list[str],
    base: str,
    cfg_json: dict[str, Any],
    out_dir: str,
    lanes: int = 1,
    device: str = "cpu",  # auto | cpu | cuda[:N] | mps
    on_clip: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Extract the clips of one video from one decode (perr.features.video_pass) and write each clip's
    file, or its error file. Never raises: one status dict per clip."""
    cfg = ExtractConfig.from_json(cfg_json)
    out = Path(out_dir)
    clips = [Clip.model_validate_json(c) for c in clips_json]
    results: list[dict[str, Any]] = []
    try:
        # "auto" is resolved here, on the worker's machine: a Ray task on a GPU node takes its GPU
        extractors = worker_extractors(cfg, str(resolve_device(device)))
    except Exception as e:  # models that cannot load fail every clip, with the reason
        return [_failed(out, c, f"{type(e).__name__}: {e}", traceback.format_exc()) for c in clips]

    def ready(clip: Clip, ctx: ClipContext | None, error: ClipError | None, decoded: float) -> None:
        t0 = time.perf_counter()
        if ctx is None:
            r = _failed(out, clip, *(error or ("unknown error", "")))
        else:
            try:
                cf = extract_context(ctx, cfg, extractors, lanes, decoded)
                write_clip_file(
                    out / "clips" / clip_filename(clip.clip_id), cf, modality_specs(extractors), cfg
                )
            except Exception as e:  # isolate: one broken clip never stops the job
                r = _failed(out, clip, f"{type(e).__name__}: {e}", traceback.format_exc())
            else:
                _error_path(out, clip).unlink(missing_ok=True)
                checkpoint_reached("features.clip")
                r = {
                    "clip_id": clip.clip_id,
                    "ok": True,
                    "seconds": cf.seconds,
                    "duration": cf.duration,
                    "wall": time.perf_counter() - t0 + decoded,
                }
        results.append(r)
        if on_clip is not None:
            on_clip(r)

    extract_group(clips, Path(base), cfg, extractors, ready)
    return results


def _error_path(out: Path, clip: Clip) -> Path:
    return out / "errors" / (clip_filename(clip.clip_id)[:-4] + ".json")


def _failed(out: Path, clip: Clip, error: str, trace: str) -> dict[str, Any]:
    write_json(_error_path(out, clip), {"clip_id": clip.clip_id, "error": error, "traceback": trace})
    return {"clip_id": clip.clip_id, "ok": False, "error": error}
