"""`perr predict`: the relationship of two characters in a new clip, explained.

Per clip: the build stages treat the whole file as one clip (shots, face tracks → characters, subtitles)
→ pair = top-2 characters (or `--pair`) → the five feature extractors with the checkpoint's T → model →
`DIR/<clip>/prediction.json` and an HTML report. The checkpoint records the extractors and dimensions
it was trained with; a clip processed with other extractors is refused before any model runs.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from perr.checkpoint import Checkpoint
from perr.construct.config import BuildConfig
from perr.construct.outputs import write_character_files
from perr.construct.pipeline import Detectors, process_video
from perr.construct.run import video_keys
from perr.device import resolve_device
from perr.errors import PerrError
from perr.features.base import ClipContext
from perr.features.config import ExtractConfig
from perr.features.workers import build_extractors, extract_clip, modality_specs
from perr.io import write_json
from perr.labels import FINE_TO_COARSE, Task, perr_tasks
from perr.logs import quiet_ffmpeg
from perr.manifest import Clip
from perr.models import attention_timeline
from perr.report.html import ReportData, write_report
from perr.store import StoreHeader
from perr.video import VideoError, iter_video_files

os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's native INFO/WARNING chatter
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: the whole file is one clip: no minimum length, no splitting, all shots in one segment
WHOLE_CLIP = {"min_clip": 0.5, "max_clip": 1e9, "segment_similarity": -1.0, "segment_lookback": 1e9}


class PredictError(PerrError, RuntimeError):
    """A clip that cannot be predicted; the message names the file and the reason."""


@dataclass
class Prediction:
    clip: str
    ok: bool
    out: Path | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def parse_pair(text: str | None, clip: Clip) -> tuple[str, str] | None:
    """`--pair 1,3` (1-based candidate numbers as in the report) or `--pair c1,c3` (character ids)."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or parts[0] == parts[1]:
        raise PredictError(f"--pair {text!r}: give two different candidates, e.g. 1,2 or c1,c3")
    ids = []
    order = clip.candidates or [c.id for c in clip.characters]
    for p in parts:
        if p.isdigit():
            k = int(p)
            if not 1 <= k <= len(order):
                raise PredictError(
                    f"--pair {text!r}: candidate #{k} does not exist (this clip has {len(order)})"
                )
            ids.append(order[k - 1])
        elif p in {c.id for c in clip.characters}:
            ids.append(p)
        else:
            raise PredictError(f"--pair {text!r}: no character {p!r} (have {', '.join(order) or 'none'})")
    return ids[0], ids[1]


def analyse_clip(path: Path, work: Path, **build_options: Any) -> Clip:
    """Run the build stages over the whole file and return it as one Clip (paths relative to `work`,
    where the candidates' thumbnails, descriptors and face boxes are written)."""
    cfg = BuildConfig(**{**WHOLE_CLIP, **build_options})
    key = video_keys([path])[path]
    detectors = Detectors(cfg)
    try:
        vb = process_video(path, key, work, cfg, detectors)
    except VideoError as e:
        raise PredictError(f"{path}: {e.reason}") from e
    finally:
        detectors.close()
    clips = vb.proposals.clips + vb.proposals.dropped
    if not clips:
        raise PredictError(f"{path}: no clip could be formed (is the video empty?)")
    write_character_files(vb, work)
    clip = max(clips, key=lambda c: c.duration or 0.0)
    return clip.model_copy(update={"clip_id": key, "status": "predict", "video": str(path.resolve())})


def _feature_header(specs: Sequence[Any], T: int) -> StoreHeader:
    return StoreHeader(modalities=list(specs), T=T, n=1)


def missing_modalities(
    masks: dict[str, np.ndarray], clip: Clip, pair: tuple[str | None, str | None]
) -> dict[str, str]:
    """Which modalities carry no evidence at all, and why (stated in prediction.json)."""
    reasons: dict[str, str] = {}
    for role, (m, cid) in enumerate(zip(("person_a", "person_b"), pair, strict=True)):
        if m in masks and not masks[m].any():
            reasons[m] = (
                "no character for this role (fewer than two characters)"
                if cid is None
                else f"character {cid} not seen at the sampled times"
            )
        del role
    if "background" in masks and not masks["background"].any():
        reasons["background"] = "no decodable frame"
    if "audio" in masks and not masks["audio"].any():
        reasons["audio"] = "no audio track (or silent)"
    if "text" in masks and not masks["text"].any():
        reasons["text"] = "no subtitles"
    return reasons


def _distributions(probs: np.ndarray, task: Task) -> tuple[dict[str, float] | None, dict[str, float]]:
    """(fine, coarse) class → probability. A 5-class model's coarse is the sum over each coarse class."""
    named = {c: float(p) for c, p in zip(task.classes, probs, strict=True)}
    fine_task, coarse_task = perr_tasks()["5"], perr_tasks()["3"]
    if task.classes == fine_task.classes:
        coarse = dict.fromkeys(coarse_task.classes, 0.0)
        for c, p in named.items():
            coarse[FINE_TO_COARSE[c]] += p
        return named, coarse
    return None, named


class Predictor:
    """A loaded checkpoint plus the extractors it needs; reused across clips of a batch."""

    def __init__(self, checkpoint: str | os.PathLike, device: str = "auto", **extract_options: Any) -> None:
        self.device = resolve_device(device)
        self.checkpoint = Path(checkpoint)
        self.ckpt = Checkpoint.load(checkpoint, self.device)
        if self.ckpt.model_args.text_modalities:
            raise PredictError(
                f"{self.checkpoint}: trained with text_encoder=finetune on raw dialogue texts "
                f"({', '.join(self.ckpt.model_args.text_modalities)}); a video clip gives subtitle vectors, "
                "not those texts, so it cannot be predicted here. Use `perr evaluate` on a dialogue store, "
                "or a model trained with text_encoder=frozen"
            )
        self.model = self.ckpt.build_model(self.device)
        self.task = self.ckpt.task
        self.modalities = self.ckpt.modalities
        self.cfg = ExtractConfig(T=self.ckpt.T, modalities=tuple(self.modalities), **extract_options)
        self.extractors = build_extractors(self.cfg)
        self.ckpt.check_features(
            _feature_header(modality_specs(self.extractors), self.cfg.T),
            f"features for {self.checkpoint.name}",
        )

    @torch.no_grad()
    def run(self, clip: Clip, base: Path) -> dict[str, Any]:
        feats = extract_clip(clip, base, self.cfg, self.extractors)
        x = {m: torch.from_numpy(feats.features[m][None]).float().to(self.device) for m in self.modalities}
        mask = {
            m: torch.from_numpy(feats.masks[m][None].astype(bool)).to(self.device) for m in self.modalities
        }
        out = self.model(x, mask)
        probs = torch.softmax(out.logits.float(), -1)[0].cpu().numpy()
        fine, coarse = _distributions(probs, self.task)
        joint = self._joint(out.joint_logits)
        a, b = ClipContext(clip, base, sampling=self.cfg.sampling).pair
        pair = (a.id if a else None, b.id if b else None)
        missing = missing_modalities(feats.masks, clip, pair)
        attention = (
            attention_timeline(out, self.modalities)[0].cpu().numpy() if out.attention is not None else None
        )
        return {
            "fine": fine,
            "coarse": coarse,
            "pair": list(pair),
            "model": self.ckpt.model_name,
            "task": self.task.name,
            "checkpoint": str(self.checkpoint),
            "trained_on_synthetic": self.ckpt.synthetic,
            **({"joint": joint} if joint is not None else {}),
            "missing_modalities": missing,
            "characters": len(clip.characters),
            "times": feats.times.tolist(),
            "_attention": attention,
            "_masks": np.stack([feats.masks[m] for m in self.modalities], axis=-1),
        }

    def _joint(self, logits: torch.Tensor | None) -> dict[str, Any] | None:
        """The joint head's own distribution (eq. 15), e.g. a 3-class reading beside the 5-class one,
        which `coarse` only derives by summing; None for a model without one."""
        task = self.ckpt.joint_task or perr_tasks().get(self.ckpt.config.joint_task)  # older checkpoints
        if logits is None or task is None:
            return None
        probs = torch.softmax(logits.float(), -1)[0].cpu().numpy()
        return {
            "task": task.name,
            "pred": task.classes[int(probs.argmax())],
            "probabilities": {c: float(p) for c, p in zip(task.classes, probs, strict=True)},
        }


def manifest_jobs(
    manifest: Path, clip_ids: Sequence[str] = ()
) -> list[tuple[str, Callable[[], tuple[Clip, Path]]]]:
    """The clips of a manifest to predict (all, or those named), each with the folder its paths are
    relative to. Unknown ids and an unreadable manifest are usage errors."""
    from perr.manifest import ManifestError, load_manifest

    try:
        clips = load_manifest(manifest)
    except (ManifestError, OSError) as e:
        raise PredictError(f"{manifest}: {e}") from e
    by_id = {c.clip_id: c for c in clips}
    missing = [c for c in clip_ids if c not in by_id]
    if missing:
        raise PredictError(f"{manifest}: no clip {', '.join(map(repr, missing))}")
    chosen = [by_id[c] for c in clip_ids] if clip_ids else clips
    if not chosen:
        raise PredictError(f"{manifest}: no clips")
    base = manifest.resolve().parent
    return [(c.clip_id, functools.partial(lambda c: (c, base), c)) for c in chosen]


def predict(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    checkpoint: str | os.PathLike,
    out: str | os.PathLike = "runs/predict",
    pair: str | None = None,
    device: str = "auto",
    report: bool = True,
    on_clip: Callable[[Prediction], None] | None = None,
    subtitles: str = "auto",
    manifest: str | os.PathLike | None = None,
    clip_ids: Sequence[str] = (),
) -> list[Prediction]:
    """Predict every clip (files or folders; or the proposals of a build's `manifest`, all or those in
    `clip_ids`, with the build's characters — its cast ids and the names a user gave them — and no
    detection run again); one failure never stops the batch.

    Returns one Prediction per input; `Prediction.result` is what `prediction.json` holds.
    `subtitles`: auto (a sidecar .srt or embedded stream, else OCR) | ocr | none.
    """
    quiet_ffmpeg()  # corrupt-frame warnings are summarised, not streamed
    out = Path(out)
    jobs: list[tuple[str, Callable[[], tuple[Clip, Path]]]] = []
    if manifest is not None:
        jobs = manifest_jobs(Path(manifest), clip_ids)
    else:
        items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        files = iter_video_files(items)
        if not files:
            raise PredictError(f"no video files found in {', '.join(map(str, items))}")
        work = out / "_build"
        for path in files:
            jobs.append(
                (
                    str(path),
                    functools.partial(lambda p: (analyse_clip(p, work, subtitles=subtitles), work), path),
                )
            )
    predictor = Predictor(checkpoint, device=device)
    results: list[Prediction] = []
    for label, load in jobs:
        try:
            clip, work = load()
            chosen = parse_pair(pair, clip)
            if chosen is not None:
                clip = clip.model_copy(update={"pair": chosen})
            result = predictor.run(clip, work)
            folder = out / clip.clip_id
            attention, masks = result.pop("_attention"), result.pop("_masks")
            result = {"clip": label, **result}
            write_json(folder / "prediction.json", result)
            if report:
                warnings = (
                    [
                        "This checkpoint was trained on SYNTHETIC data: the prediction demonstrates the pipeline, "
                        "it is not a meaningful judgement."
                    ]
                    if result["trained_on_synthetic"]
                    else []
                )
                write_report(
                    ReportData(
                        clip=clip,
                        model=result["model"],
                        fine=result["fine"] or {},
                        coarse=result["coarse"],
                        pair=[p for p in result["pair"] if p],
                        missing=[f"{k} ({v})" for k, v in result["missing_modalities"].items()],
                        attention=attention,
                        attention_masks=masks,
                        modalities=predictor.modalities,
                        times=result["times"],
                        warnings=warnings,
                    ),
                    folder,
                    base=work,
                )
            pred = Prediction(label, True, folder, result)
        except Exception as e:  # per-clip isolation: record the reason, go on with the batch
            reason = str(e) if isinstance(e, PredictError) else f"{type(e).__name__}: {e}"
            if os.environ.get("PERR_DEBUG"):
                traceback.print_exc()
            pred = Prediction(label, False, error=reason)
        results.append(pred)
        if on_clip is not None:
            on_clip(pred)
    return results
