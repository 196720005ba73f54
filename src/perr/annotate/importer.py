"""Adjudicate several annotators' votes per clip and write the final manifest.

Rules (documented in docs/annotator_guide.md):
- discard: discarded when more votes discard than keep; an equal split is a tie → status "review".
- label and pair: the most frequent answer among the votes that keep the clip; a tie for first place
  leaves the field empty and sets status "review" with the reason in `notes`.
- subtitles: the corrected lines of the first annotator (by `created_at`) whose label agrees with the
  adjudicated label (the first keeper when the label is tied); if that annotator left no subtitle
  result the OCR subtitles stay.
Clips with no usable annotation are kept unchanged; every task problem is reported.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from perr.annotate.records import ParsedExport, Problem, TaskVotes, Vote, read_export
from perr.manifest import Clip, load_manifest, write_manifest


@dataclass
class ImportReport:
    out: Path | None
    n_tasks: int
    status: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    n_cancelled: int = 0


def majority(values: Sequence[Hashable]) -> tuple[Hashable | None, Counter]:
    """The single most frequent value, or None when several tie for first place."""
    counts = Counter(values)
    if not counts:
        return None, counts
    ranked = counts.most_common()
    if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
        return None, counts
    return ranked[0][0], counts


def _fmt(counts: Counter) -> str:
    return ", ".join(f"{'+'.join(k) if isinstance(k, tuple) else k} {n}" for k, n in counts.most_common())


def adjudicate(clip: Clip, task: TaskVotes) -> Clip:
    """The clip updated from its votes (status annotated / discarded / review)."""
    votes = task.votes
    n = len(votes)
    discards = [v for v in votes if v.discard]
    keepers = [v for v in votes if not v.discard]
    review: list[str] = []
    provenance = {
        "task_id": task.task_id,
        "annotators": [v.annotator for v in votes],
        "votes": {v.annotator: ("discard" if v.discard else v.label) for v in votes},
    }
    update: dict = {"label": None, "pair": None}
    if len(discards) > len(keepers):
        reasons = sorted({v.discard_reason for v in discards if v.discard_reason})
        update.update(
            status="discarded",
            notes=f"discarded by {len(discards)}/{n}" + (f": {'; '.join(reasons)}" if reasons else ""),
        )
        return clip.model_copy(update={**update, "extra": {**clip.extra, "annotation": provenance}})
    if discards:
        review.append(f"discard tie {len(discards)}/{n}")
    label, label_counts = majority([v.label for v in keepers])
    pair, pair_counts = majority([v.pair for v in keepers])
    if label is None:
        review.append(f"label tie: {_fmt(label_counts)}")
    if pair is None:
        review.append(f"pair tie: {_fmt(pair_counts)}")
    source: Vote | None = next((v for v in keepers if label is not None and v.label == label), None)
    source = source or (keepers[0] if keepers else None)
    if source is not None and source.subtitles is not None:
        update["subtitles"] = list(source.subtitles)
        provenance["subtitles_from"] = source.annotator
    update.update(
        label=label,
        pair=pair,
        status="review" if review else "annotated",
        notes="; ".join(review) if review else None,
        extra={**clip.extra, "annotation": provenance},
    )
    # Validate the assembled record (e.g. a pair naming characters the clip does not have).
    return Clip.model_validate({**clip.model_dump(), **update})


def apply_votes(clips: Sequence[Clip], parsed: ParsedExport) -> tuple[list[Clip], ImportReport]:
    """Adjudicate every task onto its clip; clips without votes pass through unchanged."""
    report = ImportReport(
        out=None, n_tasks=parsed.n_tasks, problems=list(parsed.problems), n_cancelled=parsed.n_cancelled
    )
    by_id = {c.clip_id: i for i, c in enumerate(clips)}
    out = list(clips)
    for task in parsed.tasks:
        if task.clip_id not in by_id:
            report.problems.append(
                Problem(task.task_id, "data.clip_id", f"clip {task.clip_id!r} is not in the manifest")
            )
            continue
        if not task.votes:
            continue
        i = by_id[task.clip_id]
        try:
            out[i] = adjudicate(out[i], task)
        except ValueError as e:
            report.problems.append(Problem(task.task_id, "pair", f"adjudicated record is invalid: {e}"))
            continue
        report.status[out[i].status] += 1
    return out, report


def import_annotations(
    export: str | os.PathLike, manifest: str | os.PathLike, out: str | os.PathLike
) -> ImportReport:
    """Read a Label Studio JSON export, adjudicate onto the manifest and write the final manifest atomically."""
    clips = load_manifest(manifest)
    parsed = read_export(export)
    final, report = apply_votes(clips, parsed)
    report.out = write_manifest(out, final)
    return report
