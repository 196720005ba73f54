"""Per-clip extraction of all modalities, resumable, on one machine or on Ray.

Output folder layout (``perr features extract MANIFEST --out DIR``)::

    DIR/extraction.json        config, sampling and the ModalitySpec of every modality (name, dim,
                               extractor, version); a re-run with a different config is refused
    DIR/clips/<clip>.npz       one file per finished clip: <modality> [T, d] float32,
                               <modality>.mask [T] uint8, times [T], valid [T], meta (JSON string)
    DIR/errors/<clip>.json     one file per failed clip (removed when a later run succeeds)
    DIR/ray/                   Ray's temp files when --backend ray runs a local instance

Every file is written atomically (temp + rename), so a killed run leaves only finished clips and a
re-run skips them. One clip's failure is recorded and the batch goes on; the summary lists them.
The ``ray`` backend runs the very same :func:`extract_clip` as Ray tasks (one CPU each); nothing
here schedules work itself.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from perr.device import resolve_device
from perr.faults import checkpoint_reached
from perr.features import extractors as _extractors  # noqa: F401  (registers every extractor)
from perr.features.base import EXTRACTORS, ClipContext, Extractor
from perr.features.config import ExtractConfig
from perr.features.files import FORMAT, ClipFeatures, clip_filename, write_clip_file
from perr.io import atomic_path, read_json, write_json
from perr.manifest import Clip, load_manifest
from perr.store import ModalitySpec

ExecutionBackend = Literal["local", "ray"]


def build_extractors(cfg: ExtractConfig, device: str = "cpu") -> dict[str, Extractor]:
    """modality name → extractor instance, each the registered extractor `cfg.extractors` names
    (``person_a`` and ``person_b`` share one person pipeline). Torch models run on `device`."""
    shared: dict[str, Any] = {"device": device}
    return {m: EXTRACTORS.get(cfg.extractors[m]).create(cfg, m, shared) for m in cfg.modalities}


def modality_specs(extractors: dict[str, Extractor]) -> list[ModalitySpec]:
    return [e.spec(m) for m, e in extractors.items()]


def extract_clip(
    clip: Clip, base: Path, cfg: ExtractConfig, extractors: dict[str, Extractor], lanes: int = 1
) -> ClipFeatures:
    """All modalities of one clip. Frames and audio are decoded once and shared; per-step timings kept.

    ``lanes=2`` runs the background network beside the other extractors in a second thread (torch and
    MediaPipe release the GIL), so one clip uses both cores of a 2-core machine; the features are the
    same. Per-extractor CPU times are recorded only with ``lanes=1`` (threads share the process clock).
    """
    ctx = ClipContext(clip, base, sampling=cfg.sampling, frame_max_side=cfg.frame_max_side)
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

    if any(m in cfg.modalities for m in ("person_a", "person_b", "background")):
        timed("decode_video", lambda: ctx.frames)
    if "audio" in cfg.modalities:
        timed("decode_audio", lambda: ctx.audio)
    names = list(extractors)
    side = [m for m in names if m == "background"]
    if lanes > 1 and side and len(side) < len(names):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            fut = pool.submit(run, side)
            run([m for m in names if m not in side])
            fut.result()
    else:
        run(names)
    feats = {m: feats[m] for m in names}
    masks = {m: masks[m] for m in names}
    return ClipFeatures(clip.clip_id, feats, masks, ctx.times, ctx.valid, seconds, ctx.end - ctx.start, cpu)


# -- one unit of work: used verbatim by both backends -------------------------------------------
_WORKER_EXTRACTORS: dict[str, dict[str, Extractor]] = {}


def _worker_extractors(cfg: ExtractConfig, device: str = "cpu") -> dict[str, Extractor]:
    """Extractors of this process for `cfg`, loaded once and reused for every clip it handles."""
    key = json.dumps([cfg.to_json(), device], sort_keys=True)
    if key not in _WORKER_EXTRACTORS:
        _WORKER_EXTRACTORS[key] = build_extractors(cfg, device)
    return _WORKER_EXTRACTORS[key]


def process_clip(
    clip_json: str,
    base: str,
    cfg_json: dict[str, Any],
    out_dir: str,
    threads: int | None = None,
    lanes: int = 1,
    device: str = "cpu",
) -> dict[str, Any]:
    """Extract one clip and write its file (or its error file). Never raises: returns a status dict."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    clip = Clip.model_validate_json(clip_json)
    cfg = ExtractConfig.from_json(cfg_json)
    out = Path(out_dir)
    name = clip_filename(clip.clip_id)
    err_path = out / "errors" / (name[:-4] + ".json")
    t0 = time.perf_counter()
    try:
        extractors = _worker_extractors(cfg, device)
        cf = extract_clip(clip, Path(base), cfg, extractors, lanes=lanes)
        write_clip_file(out / "clips" / name, cf, modality_specs(extractors), cfg)
    except Exception as e:  # isolate: one broken clip never stops the batch
        write_json(
            err_path,
            {
                "clip_id": clip.clip_id,
                "error": f"{type(e).__name__}: {e}",
                "traceback": traceback.format_exc(),
            },
        )
        return {
            "clip_id": clip.clip_id,
            "ok": False,
            "error": f"{type(e).__name__}: {e}",
            "wall": time.perf_counter() - t0,
        }
    if err_path.exists():
        err_path.unlink()
    checkpoint_reached("features.clip")
    return {
        "clip_id": clip.clip_id,
        "ok": True,
        "seconds": cf.seconds,
        "duration": cf.duration,
        "wall": time.perf_counter() - t0,
    }


# -- the batch ---------------------------------------------------------------------------------------
@dataclass
class ExtractSummary:
    out: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{len(self.done)} extracted, {len(self.skipped)} already done, {len(self.failed)} failed → {self.out}"
        ]
        lines += [f"  FAILED {cid}: {msg}" for cid, msg in self.failed.items()]
        return "\n".join(lines)


class ConfigMismatch(ValueError):
    """The output folder holds features made with another configuration."""


def _check_run_record(out: Path, cfg: ExtractConfig, specs: list[ModalitySpec]) -> None:
    rec_path = out / "extraction.json"
    rec = {"format": FORMAT, "config": cfg.to_json(), "modalities": [asdict(s) for s in specs]}
    if rec_path.exists():
        old = read_json(rec_path)
        try:  # records written before a config field existed compare with that field's default
            same_config = ExtractConfig.from_json(old.get("config") or {}).to_json() == rec["config"]
        except (TypeError, ValueError):
            same_config = False
        if not same_config or old.get("modalities") != rec["modalities"]:
            raise ConfigMismatch(
                f"{rec_path}: this folder holds features made with a different configuration or extractor "
                f"versions;\n  there: {json.dumps(old.get('config'))}\n  now:   {json.dumps(rec['config'])}\n"
                "use another --out folder (or delete this one) instead of mixing the two"
            )
        return
    write_json(rec_path, rec)


def planned_specs(cfg: ExtractConfig) -> list[ModalitySpec]:
    """The ModalitySpecs a config produces, without loading any model."""
    return modality_specs(build_extractors(cfg))


def extract_manifest(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    cfg: ExtractConfig | None = None,
    backend: ExecutionBackend = "local",
    address: str | None = None,
    num_cpus: int | None = None,
    clip_ids: Iterable[str] | None = None,
    progress: bool = True,
    threads: int | None = None,
    lanes: int | None = None,
    device: str = "auto",
) -> ExtractSummary:
    """Extract every clip of a manifest into OUT (resumable; see module docstring).

    `device` (auto | cpu | cuda[:N]) is where the torch models run (background network, expression CNN);
    it changes speed, not the features beyond float rounding.
    Local backend: `lanes` (default 2 on a machine with ≥ 2 cores) runs the background network beside
    the other extractors in a second thread; `threads` is torch's intra-op thread count (default 1 when
    lanes > 1, else torch's choice). Ray tasks use one CPU, one thread and one lane each.
    """
    cfg = cfg or ExtractConfig()
    manifest = Path(manifest)
    out = Path(out)
    clips = load_manifest(manifest)
    if clip_ids is not None:
        wanted = set(clip_ids)
        clips = [c for c in clips if c.clip_id in wanted]
    out.mkdir(parents=True, exist_ok=True)
    _check_run_record(out, cfg, planned_specs(cfg))
    summary = ExtractSummary(out)
    todo = []
    for c in clips:
        if (out / "clips" / clip_filename(c.clip_id)).exists():
            summary.skipped.append(c.clip_id)
        else:
            todo.append(c)
    base = str(manifest.resolve().parent)
    cfg_json = cfg.to_json()
    args = [(c.model_dump_json(), base, cfg_json, str(out.resolve())) for c in todo]
    if backend == "local":
        lanes = lanes if lanes is not None else (2 if (os.cpu_count() or 1) >= 2 else 1)
        if threads is None and lanes > 1:
            threads = 1
        results = _run_local(args, progress, threads, lanes, str(resolve_device(device)))
    elif backend == "ray":
        results = _run_ray(args, out, address, num_cpus, progress)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose local or ray")
    for r in results:
        summary.results.append(r)
        if r["ok"]:
            summary.done.append(r["clip_id"])
        else:
            summary.failed[r["clip_id"]] = r["error"]
    return summary


def _progress(enabled: bool):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]features"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        disable=not enabled,
        transient=False,
    )


def _run_local(
    args: list[tuple[str, str, dict[str, Any], str]],
    progress: bool,
    threads: int | None = None,
    lanes: int = 1,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    import torch

    before = torch.get_num_threads()
    results = []
    try:
        with _progress(progress) as bar:
            task = bar.add_task("", total=len(args))
            for a in args:
                r = process_clip(*a, threads, lanes, device)
                results.append(r)
                bar.update(task, advance=1, description=("" if r["ok"] else f"failed: {r['clip_id']}"))
    finally:
        torch.set_num_threads(before)
    return results


def _run_ray(
    args: list[tuple[str, str, dict[str, Any], str]],
    out: Path,
    address: str | None,
    num_cpus: int | None,
    progress: bool,
) -> list[dict[str, Any]]:
    import ray

    started = False
    cleanup: list[Path] = []
    saved_env = {k: os.environ.get(k) for k in ("RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")}
    try:
        if not ray.is_initialized():
            started = True
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                tmp, token = _local_ray_dirs(out)
                if tmp != (out / "ray").resolve():
                    cleanup.append(tmp)
                # Ray 2.60 turns token auth on for a new local instance and would write its token to
                # ~/.ray: hand it one kept in the run dir instead (unless the user set up a token).
                if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
                    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
                os.environ["RAY_TMPDIR"] = str(tmp)
                ray.init(
                    num_cpus=num_cpus or os.cpu_count() or 1,
                    include_dashboard=False,
                    _temp_dir=str(tmp),
                    log_to_driver=False,
                )
        remote = ray.remote(num_cpus=1, max_retries=1)(process_clip)
        ids = {remote.remote(*a, 1): Clip.model_validate_json(a[0]).clip_id for a in args}
        pending = list(ids)
        results = []
        with _progress(progress) as bar:
            task = bar.add_task("ray", total=len(pending))
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        r = ray.get(ref)
                    except Exception as e:  # a worker died (e.g. out of memory): record, go on
                        r = {
                            "clip_id": ids[ref],
                            "ok": False,
                            "error": f"ray task failed: {type(e).__name__}: {e}",
                        }
                    results.append(r)
                    bar.update(task, advance=1)
        return results
    finally:
        if started:
            ray.shutdown()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for d in cleanup:
            shutil.rmtree(d, ignore_errors=True)


#: Ray's Unix sockets live at <temp>/session_<date>_<pid>/sockets/plasma_store and must fit in 107 bytes.
_RAY_TEMP_MAX = 40


def _local_ray_dirs(out: Path) -> tuple[Path, Path]:
    """Temp folder and auth-token file for an in-process Ray instance: inside the run dir (``DIR/ray``),
    or — when that path is too long for Ray's socket names — a short private folder in the system temp
    dir that is removed after the run (its location is noted in ``DIR/ray/TEMP_DIR``)."""
    import secrets
    import tempfile

    run = (out / "ray").resolve()
    run.mkdir(parents=True, exist_ok=True)
    token = run / "auth_token"
    if not token.exists():
        with atomic_path(token) as t:
            t.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    if len(str(run)) <= _RAY_TEMP_MAX:
        return run, token
    tmp = Path(tempfile.mkdtemp(prefix="perr-ray-"))
    (run / "TEMP_DIR").write_text(str(tmp) + "\n", encoding="utf-8")
    return tmp, token
