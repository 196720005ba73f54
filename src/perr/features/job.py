"""`perr features extract`: every clip of a manifest, resumable, on this machine or on Ray.

Output folder layout (``perr features extract MANIFEST --out DIR``)::

    DIR/extraction.json        config, sampling and the ModalitySpec of every modality (name, dim,
                               extractor, version); a re-run with a different config is refused
    DIR/clips/<clip>.npz       one file per finished clip: <modality> [T, d] float32,
                               <modality>.mask [T] uint8, times [T], valid [T], meta (JSON string)
    DIR/errors/<clip>.json     one file per failed clip (removed when a later run succeeds)
    DIR/ray/                   Ray's temp files when --backend ray runs a local instance

The unit of work is the clips of one video, or of one time run of a long video (`group_seconds`), decoded
in one forward pass (:mod:`perr.features.video_pass`); units go to an executor (:mod:`perr.execution`):
this process, local worker processes, or Ray tasks. Every clip file is written atomically by the worker
that made it, so a killed run leaves only finished clips and a re-run skips them. One clip's failure is
recorded and the job goes on; the summary lists them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress, TextColumn

from perr.device import resolve_device
from perr.errors import ConfigMismatch
from perr.execution import ExecutionConfig, InlineExecutor, Runner, make_executor
from perr.features.config import ExtractConfig
from perr.features.files import FORMAT, clip_filename
from perr.features.video_pass import clip_groups
from perr.features.workers import init_worker, planned_specs, process_group
from perr.io import read_json, write_json
from perr.logs import verbose
from perr.manifest import load_manifest
from perr.progress import progress_allowed, progress_columns
from perr.store import ModalitySpec

#: Seconds of one video in one unit of work (at most): a 45-minute episode becomes ~20 units that several
#: workers share, each still one forward decode over its clips. A short job gets smaller units (at
#: least MIN_GROUP_SECONDS), at least two per worker, so that no worker idles.
GROUP_SECONDS = 150.0
MIN_GROUP_SECONDS = 30.0


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


def check_run_record(out: Path, cfg: ExtractConfig, specs: list[ModalitySpec]) -> None:
    """Write DIR/extraction.json, or refuse a folder made with another configuration."""
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


def extract_manifest(
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    cfg: ExtractConfig | None = None,
    execution: ExecutionConfig | None = None,
    clip_ids: Iterable[str] | None = None,
    progress: bool = True,
    threads: int | None = None,
    lanes: int | None = None,
    device: str = "auto",
    group_seconds: float = GROUP_SECONDS,
) -> ExtractSummary:
    """Extract every clip of a manifest into OUT (resumable; see module docstring).

    `execution` (default: local worker processes, one per core) says where units run. With one worker
    (``jobs=1``) a clip runs in two lanes by default (the background network beside the other extractors,
    one torch thread each); worker processes and Ray tasks use one thread and one lane each. `device` (auto
    | cpu | cuda[:N]) is where the torch models run; it changes speed, not the features beyond rounding.
    """
    cfg = cfg or ExtractConfig()
    execution = execution or ExecutionConfig()
    manifest, out = Path(manifest), Path(out)
    clips = load_manifest(manifest)
    if clip_ids is not None:
        wanted = set(clip_ids)
        clips = [c for c in clips if c.clip_id in wanted]
    out.mkdir(parents=True, exist_ok=True)
    check_run_record(out, cfg, planned_specs(cfg))
    summary = ExtractSummary(out)
    todo = []
    for c in clips:
        if (out / "clips" / clip_filename(c.clip_id)).exists():
            summary.skipped.append(c.clip_id)
        else:
            todo.append(c)
    base = manifest.resolve().parent
    workers = execution.workers()
    one = workers == 1 and execution.backend != "ray"
    lanes = lanes if lanes is not None else (2 if one and (os.cpu_count() or 1) >= 2 else 1)
    threads = threads if threads is not None else (1 if (lanes > 1 or not one) else None)
    # An explicit device is checked here, at once; "auto" is resolved by each worker on its own machine, so
    # this process, which only hands out work, never loads torch (unless it extracts inline).
    dev = device if device == "auto" else str(resolve_device(device))
    executor = make_executor(execution, out, init_worker, (threads, verbose()))
    try:
        with _progress(progress) as bar:
            task = bar.add_task("", total=len(todo))

            def advance(r: dict[str, Any]) -> None:
                bar.update(task, advance=1, description="" if r["ok"] else f"failed: {r['clip_id']}")

            runner = Runner(executor, shared_fs=execution.shared_fs)
            for g in clip_groups(todo, base, unit_seconds(todo, executor.slots, group_seconds)):
                runner.submit(
                    tuple(c.clip_id for c in g),
                    process_group,
                    [c.model_dump_json() for c in g],
                    str(base),
                    cfg.to_json(),
                    out_dir=str(out.resolve()),
                    lanes=lanes,
                    device=dev,
                    on_clip=advance if isinstance(executor, InlineExecutor) else None,
                    output="out_dir",
                )
            for ids, results, error in runner.completed():
                if error is not None:  # a unit that failed as a whole: its clips are recorded as failed
                    results = [
                        {"clip_id": cid, "ok": False, "error": f"{type(error).__name__}: {error}"}
                        for cid in ids
                    ]
                for r in results:
                    summary.results.append(r)
                    if r["ok"]:
                        summary.done.append(r["clip_id"])
                        (out / "errors" / f"{r['clip_id']}.json").unlink(missing_ok=True)  # an old failure
                    else:
                        summary.failed[r["clip_id"]] = r["error"]
                    if not isinstance(executor, InlineExecutor):
                        advance(r)
    finally:
        executor.close()
    return summary


def unit_seconds(clips: list[Any], workers: int, most: float = GROUP_SECONDS) -> float:
    """Seconds of video per unit of work: `most`, or less so that every worker gets two units."""
    extent: dict[str, tuple[float, float]] = {}
    for c in clips:
        lo, hi = extent.get(c.video, (c.start, c.end or c.start))
        extent[c.video] = (min(lo, c.start), max(hi, c.end or c.start))
    total = sum(hi - lo for lo, hi in extent.values())
    if workers <= 1 or total <= 0:
        return most
    return min(most, max(MIN_GROUP_SECONDS, total / (2 * workers)))


def _progress(enabled: bool) -> Progress:
    return Progress(
        *progress_columns("features"),
        TextColumn("{task.description}"),
        disable=not progress_allowed(enabled),
        transient=False,
    )
