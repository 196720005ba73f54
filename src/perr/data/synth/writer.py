"""Generate the synthetic set and write it: the store (one folder per split), the manifest, the summary.
The same config writes byte-identical files."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perr.data.synth.config import (
    DATASET,
    GENERATOR,
    GENERATOR_VERSION,
    MANIFEST_NAME,
    STORE_DIRNAME,
    SUMMARY_NAME,
    SynthConfig,
)
from perr.data.synth.story import Story, ar1, clip_record, stretches
from perr.data.synth.world import (
    AUDIO,
    BACKGROUND,
    IOM_RATIOS,
    LAYOUTS,
    NO_SUBTITLE_RATIO,
    PERSON,
    Knobs,
    make_dramas,
    projections,
    shuffled_assignment,
)
from perr.io import read_json, write_json
from perr.labels import FINE, erato_ratios
from perr.manifest import Clip, write_manifest
from perr.modalities import DEFAULT_SIGNATURE, PERR_MODALITIES
from perr.splits import group_split, stratified_split
from perr.stats import compute_stats
from perr.store import ModalitySpec, StoreHeader, write_split


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


# ----------------------------------------------------------------------------------------------- API


def generate(cfg: SynthConfig | None = None) -> SynthData:
    """Generate all clips in memory (no files). Deterministic for a given config."""
    cfg = cfg or SynthConfig()
    cfg.validate()
    knobs = Knobs.of(cfg.difficulty)
    root = np.random.SeedSequence([cfg.seed, 20210])
    plan_rng, noise_rng = (np.random.default_rng(s) for s in root.spawn(2))
    labels = shuffled_assignment(plan_rng, cfg.n, erato_ratios())
    modes = shuffled_assignment(plan_rng, cfg.n, IOM_RATIOS)
    silent_flags = shuffled_assignment(
        plan_rng, cfg.n, {"silent": NO_SUBTITLE_RATIO, "spoken": 1 - NO_SUBTITLE_RATIO}
    )
    dramas = make_dramas(plan_rng, cfg.drama_count)
    which = plan_rng.integers(len(dramas), size=cfg.n)

    T = cfg.T
    z = {m: np.zeros((cfg.n, T, LAYOUTS[m].width)) for m in PERR_MODALITIES}
    masks = {m: np.zeros((cfg.n, T), dtype=np.uint8) for m in PERR_MODALITIES}
    clips = []
    for i in range(cfg.n):
        rng = np.random.default_rng([cfg.seed, 20210, i])
        drama = dramas[int(which[i])]
        story = Story(rng, T, labels[i], modes[i], silent_flags[i] == "spoken", drama, knobs)
        for m in PERR_MODALITIES:
            z[m][i] = story.z[m]
        for m, v in story.masks().items():
            masks[m][i] = v
        episode = 1 + int(rng.integers(drama.episodes))
        clips.append(clip_record(i, story, drama, episode, float(rng.uniform(0, 2400)), modes[i]))

    # nuisance drifts, drawn for all clips at once (the stories left these slots at zero)
    for m in ("person_a", "person_b"):
        z[m][..., PERSON["nuisance"]] = ar1(noise_rng, (cfg.n, T, 6))
    z["background"][..., BACKGROUND["motion"]] = ar1(noise_rng, (cfg.n, T, 3), 0.6)
    z["background"][..., BACKGROUND["nuisance"]] = ar1(noise_rng, (cfg.n, T, 4))
    z["audio"][..., AUDIO["loud"]] += 0.3 * ar1(noise_rng, (cfg.n, T, 1), 0.7)
    z["audio"][..., AUDIO["nuisance"]] = ar1(noise_rng, (cfg.n, T, 4))
    proj = projections(cfg)
    features = {}
    for m in PERR_MODALITIES:
        lat = z[m] + knobs.latent_noise * noise_rng.standard_normal(z[m].shape)
        x = lat @ proj[m] + knobs.feature_noise * noise_rng.standard_normal((cfg.n, T, int(cfg.dims[m])))
        # extractor glitches (blur, occlusion, a wrong face, music drowning speech): a stretch of steps whose
        # features are loud noise though the mask says present — where weighing modalities per step pays
        glitch = stretches(noise_rng, cfg.n, T, knobs.glitches)
        x[glitch] = 2.0 * noise_rng.standard_normal((int(glitch.sum()), int(cfg.dims[m])))
        features[m] = (x * masks[m][..., None]).astype(np.float32)
    return SynthData(config=cfg, features=features, masks=masks, clips=clips)


def assign_splits(cfg: SynthConfig, labels: Sequence[str], dramas: Sequence[str]) -> list[str]:
    """Split per clip: the paper's stratified share of each class as test (and val), or drama-disjoint."""
    fractions = {"test": cfg.test_fraction, "val": cfg.val_fraction}
    seed = [cfg.seed, 20210, 99]
    if cfg.split == "stratified":
        return stratified_split(labels, fractions, seed, classes=FINE)
    return group_split(dramas, fractions, seed, noun="drama")


def summarise(clips: Sequence[Clip]) -> dict[str, Any]:
    """The §3.3 statistics of the generated set (:func:`perr.stats.compute_stats`), labelled synthetic."""
    return {
        "dataset": DATASET,
        "synthetic": True,
        **compute_stats(clips),
        "splits": {s: sum(1 for c in clips if c.split == s) for s in ("train", "val", "test")},
    }


@dataclass
class SynthResult:
    store: Path
    manifest: Path
    summary_path: Path
    summary: dict[str, Any]


def write_synthetic(out: str | os.PathLike, cfg: SynthConfig | None = None) -> SynthResult:
    """Generate and write `out/synthetic-erato/{train,val?,test}/`, `out/manifest.synthetic.jsonl` and
    `out/synthetic-erato.summary.json`. Byte-identical for the same config."""
    cfg = cfg or SynthConfig()
    data = generate(cfg)
    out = Path(out)
    (out / SUMMARY_NAME).unlink(missing_ok=True)  # the summary is written last: it marks a complete set
    splits = assign_splits(cfg, data.labels, [c.drama or "" for c in data.clips])
    for clip, s in zip(data.clips, splits, strict=True):
        clip.split = s  # type: ignore[assignment]
    real = {s.name: s for s in DEFAULT_SIGNATURE} if cfg.like_extractors else {}
    modalities = [
        real[m]
        if m in real
        else ModalitySpec(
            name=m, dim=int(cfg.dims[m]), extractor="synthetic-latent-projection", version=GENERATOR_VERSION
        )
        for m in PERR_MODALITIES
    ]
    provenance = {
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
    store = out / STORE_DIRNAME
    for s in ("train", "val", "test"):
        rows = [i for i, x in enumerate(splits) if x == s]
        if not rows:
            if (store / s).exists():  # a stale split from an earlier config
                shutil.rmtree(store / s)
            continue
        header = StoreHeader(
            modalities=modalities,
            T=cfg.T,
            n=len(rows),
            dataset=DATASET,
            synthetic=True,
            provenance={**provenance, "split": s},
        )
        index = [
            {
                "clip_id": data.clips[i].clip_id,
                "label": data.clips[i].label,
                "drama": data.clips[i].drama,
                "episode": data.clips[i].episode,
                "duration": data.clips[i].duration,
                "iom_mode": data.clips[i].extra["iom_mode"],
                "synthetic": True,
            }
            for i in rows
        ]
        write_split(
            store / s,
            header,
            {m: data.features[m][rows] for m in PERR_MODALITIES},
            {m: data.masks[m][rows] for m in PERR_MODALITIES},
            index,
        )
    manifest = write_manifest(out / MANIFEST_NAME, data.clips)
    summary = summarise(data.clips)
    summary["generator"], summary["version"], summary["config"] = GENERATOR, GENERATOR_VERSION, asdict(cfg)
    write_json(out / SUMMARY_NAME, summary)
    return SynthResult(store=store, manifest=manifest, summary_path=out / SUMMARY_NAME, summary=summary)


def ensure_synthetic(out: str | os.PathLike, **options: Any) -> Path:
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
    return write_synthetic(out, cfg).store
