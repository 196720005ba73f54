"""Generate the synthetic set and write it: the store (one folder per split), the manifest, the summary.

Streaming: clips are made a chunk at a time and written straight into the store's memory-mapped files
(:class:`perr.store.SplitWriter`), the manifest and the §3.3 statistics (:class:`perr.stats.ClipStats`),
so memory stays flat whatever `n` is. The plan (labels, IoM modes, silent clips, dramas, split) is drawn
for all clips at once (it is small); everything else of clip i comes from its own seeded streams, so the
same config writes byte-identical files whatever the chunk size. While the main thread builds the
stories of one chunk (Python), a worker thread renders and writes the previous one (NumPy, which
releases the GIL), so generation keeps two cores busy.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perr.data.synth.config import (
    DATASET,
    DEFAULT_CHUNK,
    GENERATOR,
    GENERATOR_VERSION,
    MANIFEST_NAME,
    STORE_DIRNAME,
    SUMMARY_NAME,
    SynthConfig,
)
from perr.data.synth.render import ChunkNoise, projections, render_chunk
from perr.data.synth.story import Story, clip_record
from perr.data.synth.world import (
    IOM_RATIOS,
    LAYOUTS,
    NO_SUBTITLE_RATIO,
    Drama,
    Knobs,
    make_dramas,
    shuffled_assignment,
)
from perr.io import atomic_open, read_json, write_json
from perr.labels import FINE, erato_ratios
from perr.manifest import Clip
from perr.modalities import DEFAULT_SIGNATURE, PERR_MODALITIES
from perr.splits import group_split, stratified_split
from perr.stats import ClipStats
from perr.store import SPLITS, ModalitySpec, SplitWriter, StoreHeader

Progress = Callable[[int, int], None]  # (clips done, clips in all)


@dataclass
class SynthData:
    """Generated arrays (all clips, generation order) and their manifest records."""

    config: SynthConfig
    features: dict[str, np.ndarray]  # [N, T, d_m] float32
    masks: dict[str, np.ndarray]  # [N, T] uint8
    clips: list[Clip]

    @property
    def labels(self) -> list[str]:
        return [c.label or "" for c in self.clips]


@dataclass
class Plan:
    """What is drawn for all clips at once: small, and the same whatever the chunk size."""

    labels: list[str]
    modes: list[str]
    spoken: list[bool]
    dramas: list[Drama]
    which: np.ndarray  # drama index per clip
    splits: list[str]


@dataclass
class Chunk:
    """Clips first … first + len(clips) - 1: features [c, T, d_m] float32, masks [c, T] uint8, records."""

    first: int
    features: dict[str, np.ndarray]
    masks: dict[str, np.ndarray]
    clips: list[Clip]


# ----------------------------------------------------------------------------------------------- plan


def assign_splits(cfg: SynthConfig, labels: Sequence[str], dramas: Sequence[str]) -> list[str]:
    """Split per clip: the paper's stratified share of each class as test (and val), or drama-disjoint."""
    fractions = {"test": cfg.test_fraction, "val": cfg.val_fraction}
    seed = [cfg.seed, 20210, 99]
    if cfg.split == "stratified":
        return stratified_split(labels, fractions, seed, classes=FINE)
    return group_split(dramas, fractions, seed, noun="drama")


def make_plan(cfg: SynthConfig) -> Plan:
    plan_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 20210]).spawn(2)[0])
    labels = shuffled_assignment(plan_rng, cfg.n, erato_ratios())
    modes = shuffled_assignment(plan_rng, cfg.n, IOM_RATIOS)
    silent = shuffled_assignment(
        plan_rng, cfg.n, {"silent": NO_SUBTITLE_RATIO, "spoken": 1 - NO_SUBTITLE_RATIO}
    )
    dramas = make_dramas(plan_rng, cfg.drama_count)
    which = plan_rng.integers(len(dramas), size=cfg.n)
    splits = assign_splits(cfg, labels, [dramas[int(k)].name for k in which])
    return Plan(labels, modes, [s == "spoken" for s in silent], dramas, which, splits)


# ----------------------------------------------------------------------------------------------- chunks


def _stories(
    cfg: SynthConfig, plan: Plan, knobs: Knobs, lo: int, hi: int
) -> tuple[ChunkNoise, dict, dict, list[Clip]]:
    """Noise draws, latents [c, T, w_m] float32, masks [c, T] and records of clips lo … hi - 1 (each clip
    from its own streams)."""
    c, T = hi - lo, cfg.T
    noise = ChunkNoise(cfg, knobs, lo, c)
    z = {m: np.empty((c, T, LAYOUTS[m].width), np.float32) for m in PERR_MODALITIES}
    masks = {m: np.empty((c, T), np.uint8) for m in PERR_MODALITIES}
    clips = []
    for j, i in enumerate(range(lo, hi)):
        rng = np.random.default_rng([cfg.seed, 20210, i])
        drama = plan.dramas[int(plan.which[i])]
        story = Story(rng, T, plan.labels[i], plan.modes[i], plan.spoken[i], drama, knobs)
        for m in PERR_MODALITIES:
            z[m][j] = story.z[m]
        for m, v in story.masks().items():
            masks[m][j] = v
        episode = 1 + int(rng.integers(drama.episodes))
        clip = clip_record(i, story, drama, episode, float(rng.uniform(0, 2400)), plan.modes[i])
        clip.split = plan.splits[i]  # type: ignore[assignment]
        clips.append(clip)
        noise.draw(j)
    return noise, z, masks, clips


def produce(
    cfg: SynthConfig,
    sink: Callable[[Chunk], None],
    chunk: int = DEFAULT_CHUNK,
    plan: Plan | None = None,
    progress: Progress | None = None,
) -> Plan:
    """Make every clip, `chunk` at a time, and hand each chunk to `sink` in order (in a worker thread,
    while the next chunk's stories are built). Deterministic for a config, whatever `chunk` is."""
    cfg.validate()
    if chunk < 1:
        raise ValueError(f"chunk = {chunk}: must be ≥ 1")
    plan = plan or make_plan(cfg)
    knobs, proj = Knobs.of(cfg.difficulty), projections(cfg)

    def render_and_sink(noise: ChunkNoise, z: dict, masks: dict, clips: list[Clip]) -> int:
        sink(Chunk(noise.first, render_chunk(cfg, knobs, proj, noise, z, masks), masks, clips))
        return noise.first + len(clips)

    with ThreadPoolExecutor(1, thread_name_prefix="perr-synth") as pool:
        pending: Future[int] | None = None
        try:
            for lo in range(0, cfg.n, chunk):
                stories = _stories(cfg, plan, knobs, lo, min(cfg.n, lo + chunk))
                nxt = pool.submit(render_and_sink, *stories)
                if pending is not None:
                    done = pending.result()
                    if progress is not None:
                        progress(done, cfg.n)
                pending = nxt
            if pending is not None:
                done = pending.result()
                if progress is not None:
                    progress(done, cfg.n)
        except BaseException:
            if pending is not None:
                pending.cancel()
            raise
    return plan


# ----------------------------------------------------------------------------------------------- API


def generate(cfg: SynthConfig | None = None, chunk: int = DEFAULT_CHUNK) -> SynthData:
    """Generate all clips in memory (no files): for small sets and tests. Deterministic for a given config."""
    cfg = cfg or SynthConfig()
    parts: list[Chunk] = []
    produce(cfg, parts.append, chunk=chunk)
    return SynthData(
        config=cfg,
        features={m: np.concatenate([p.features[m] for p in parts]) for m in PERR_MODALITIES},
        masks={m: np.concatenate([p.masks[m] for p in parts]) for m in PERR_MODALITIES},
        clips=[c for p in parts for c in p.clips],
    )


def summarise(clips: Sequence[Clip]) -> dict[str, Any]:
    """The §3.3 statistics of the generated set (:func:`perr.stats.compute_stats`), labelled synthetic."""
    stats = ClipStats()
    for c in clips:
        stats.add(c)
    return _summary(stats, [c.split or "" for c in clips])


def _summary(stats: ClipStats, splits: Sequence[str]) -> dict[str, Any]:
    return {
        "dataset": DATASET,
        "synthetic": True,
        **stats.result(),
        "splits": {s: sum(1 for x in splits if x == s) for s in SPLITS},
    }


@dataclass
class SynthResult:
    store: Path
    manifest: Path
    summary_path: Path
    summary: dict[str, Any]


def _modalities(cfg: SynthConfig) -> list[ModalitySpec]:
    real = {s.name: s for s in DEFAULT_SIGNATURE} if cfg.like_extractors else {}
    return [
        real[m]
        if m in real
        else ModalitySpec(
            name=m, dim=int(cfg.dims[m]), extractor="synthetic-latent-projection", version=GENERATOR_VERSION
        )
        for m in PERR_MODALITIES
    ]


def _provenance(cfg: SynthConfig) -> dict[str, Any]:
    return {
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "config": asdict(cfg),
        "note": "SYNTHETIC data shaped like ERATO (paper §3.3); not real video features"
        + (
            "; laid out like the real extractors' output (names, versions, dims)"
            if cfg.like_extractors
            else ""
        ),
    }


def _index_row(clip: Clip) -> dict[str, Any]:
    return {
        "clip_id": clip.clip_id,
        "label": clip.label,
        "drama": clip.drama,
        "episode": clip.episode,
        "duration": clip.duration,
        "iom_mode": clip.extra["iom_mode"],
        "synthetic": True,
    }


def write_synthetic(
    out: str | os.PathLike,
    cfg: SynthConfig | None = None,
    chunk: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
) -> SynthResult:
    """Generate and write `out/synthetic-erato/{train,val?,test}/`, `out/manifest.synthetic.jsonl` and
    `out/synthetic-erato.summary.json`, `chunk` clips at a time (memory stays flat whatever `cfg.n`).
    Byte-identical for the same config, whatever `chunk` is; `progress(done, total)` after each chunk."""
    cfg = cfg or SynthConfig()
    cfg.validate()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_NAME).unlink(missing_ok=True)  # the summary is written last: it marks a complete set
    plan = make_plan(cfg)
    store = out / STORE_DIRNAME
    modalities, provenance = _modalities(cfg), _provenance(cfg)
    counts = {s: plan.splits.count(s) for s in SPLITS}
    row_of = np.zeros(cfg.n, np.int64)  # row of each clip in its split (generation order within a split)
    for s in SPLITS:
        members = [i for i, x in enumerate(plan.splits) if x == s]
        row_of[members] = np.arange(len(members))
    index: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS if counts[s]}
    stats = ClipStats()
    with contextlib.ExitStack() as stack:
        writers = {
            s: stack.enter_context(
                SplitWriter(
                    store / s,
                    StoreHeader(
                        modalities=modalities,
                        T=cfg.T,
                        n=counts[s],
                        dataset=DATASET,
                        synthetic=True,
                        provenance={**provenance, "split": s},
                    ),
                )
            )
            for s in index
        }
        manifest = stack.enter_context(atomic_open(out / MANIFEST_NAME))

        def sink(part: Chunk) -> None:
            splits = np.asarray(plan.splits[part.first : part.first + len(part.clips)])
            for s, writer in writers.items():
                sel = np.flatnonzero(splits == s)  # these clips are consecutive rows of split s
                if len(sel):
                    writer.write(
                        int(row_of[part.first + sel[0]]),
                        {m: part.features[m][sel] for m in PERR_MODALITIES},
                        {m: part.masks[m][sel] for m in PERR_MODALITIES},
                    )
            for clip in part.clips:
                manifest.write(clip.model_dump_json(exclude_none=True) + "\n")
                stats.add(clip)
                index[clip.split or ""].append(_index_row(clip))

        produce(cfg, sink, chunk=chunk, plan=plan, progress=progress)
        for s, writer in writers.items():
            writer.close(index[s])
    for s in SPLITS:
        if not counts[s] and (store / s).exists():  # a stale split from an earlier config
            shutil.rmtree(store / s)
    summary = _summary(stats, plan.splits)
    summary["generator"], summary["version"], summary["config"] = GENERATOR, GENERATOR_VERSION, asdict(cfg)
    write_json(out / SUMMARY_NAME, summary)
    return SynthResult(
        store=store, manifest=out / MANIFEST_NAME, summary_path=out / SUMMARY_NAME, summary=summary
    )


def ensure_synthetic(
    out: str | os.PathLike, progress: Progress | None = None, chunk: int = DEFAULT_CHUNK, **options: Any
) -> Path:
    """The store root of a synthetic set under `out` (generated unless one with the same config is
    complete there): what `perr demo` and `perr benchmark --dataset synthetic` call."""
    cfg = SynthConfig(**options)
    out = Path(out)
    summary = out / SUMMARY_NAME
    if summary.exists():
        try:
            old = read_json(summary)
            same = (
                old.get("config") == json.loads(json.dumps(asdict(cfg)))
                and old.get("version") == GENERATOR_VERSION
            )
        except (OSError, ValueError):
            same = False
        if same and (out / STORE_DIRNAME / "train" / "header.json").exists():
            return out / STORE_DIRNAME
    return write_synthetic(out, cfg, chunk=chunk, progress=progress).store
