"""Comparing subtitle text: normalisation, similarity, character error rate, and OCR scoring."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from perr.subtitles.cues import Cue

_TAG = re.compile(r"<[^>]*>|\{[^}]*\}")
_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u9fff\uff00-\uffef])")


def normalise_subtitle(text: str, strip_tags: bool = True) -> str:
    """Comparable subtitle text: NFKC (full-width → ASCII forms), markup tags removed, whitespace
    collapsed, and no spaces between CJK characters (OCR may insert them; Chinese has none)."""
    t = re.sub(r"\s+", " ", text)
    t = _CJK_GAP.sub("", t)  # before NFKC, while CJK punctuation is still full-width
    t = unicodedata.normalize("NFKC", t)
    if strip_tags:
        t = _TAG.sub("", t)
    return re.sub(r"\s+", " ", t).strip()


def text_similarity(a: str, b: str) -> float:
    """Normalised Levenshtein similarity in [0, 1] of two normalised subtitle strings."""
    from rapidfuzz.distance import Levenshtein

    return float(Levenshtein.normalized_similarity(normalise_subtitle(a), normalise_subtitle(b)))


def _compact(text: str) -> str:
    """Letters and digits only, lower-cased: what two readings of one line share whatever the
    spacing and punctuation OCR put between the words."""
    return "".join(ch for ch in normalise_subtitle(text).casefold() if ch.isalnum())


def partial_similarity(a: str, b: str, min_length_ratio: float = 0.5) -> float:
    """How well the shorter string's letters align with a stretch of the longer one, in [0, 1].

    A busy background behind a subtitle garbles a second reading of it into a fragment
    ("ld you aI was at woi" of "I told you, I was at work."), which plain Levenshtein similarity
    scores low. Spaces and punctuation are ignored. A fragment shorter than `min_length_ratio` of
    the other scores 0, so a short line ("Yes.") never matches a longer one that contains it."""
    from rapidfuzz import fuzz

    ca, cb = _compact(a), _compact(b)
    if not ca or not cb or min(len(ca), len(cb)) < min_length_ratio * max(len(ca), len(cb)):
        return 0.0
    return float(fuzz.partial_ratio(ca, cb)) / 100.0


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate: edit distance / reference length (after :func:`normalise_subtitle`)."""
    from rapidfuzz.distance import Levenshtein

    ref, hyp = normalise_subtitle(reference), normalise_subtitle(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return Levenshtein.distance(ref, hyp) / len(ref)


@dataclass(frozen=True)
class SubtitleScore:
    """OCR quality against reference cues: corpus CER and start/end timing errors (seconds)."""

    cer: float
    matched: int
    missed: int
    extra: int
    start_error_mean: float
    start_error_max: float
    end_error_mean: float
    end_error_max: float


def score_cues(
    reference: Sequence[Cue],
    hypothesis: Sequence[Cue],
    duration: float | None = None,
    min_similarity: float = 0.5,
) -> SubtitleScore:
    """Match each reference cue to the best hypothesis by text similarity among those overlapping it
    in time; CER is over all reference characters (a missed cue counts fully). Reference cues that
    start after `duration` (the video's end) are ignored; ends are clipped to it."""
    from rapidfuzz.distance import Levenshtein

    refs = [
        Cue(c.start, min(c.end, duration) if duration else c.end, c.text)
        for c in reference
        if duration is None or c.start < duration
    ]
    used: set[int] = set()
    edits = chars = 0
    starts: list[float] = []
    ends: list[float] = []
    missed = 0
    for r in refs:
        ref_t = normalise_subtitle(r.text)
        chars += len(ref_t)
        best, best_sim = None, min_similarity
        for i, h in enumerate(hypothesis):
            if i in used or h.end < r.start - 1.0 or h.start > r.end + 1.0:
                continue
            s = text_similarity(r.text, h.text)
            if s >= best_sim:
                best, best_sim = i, s
        if best is None:
            edits += len(ref_t)
            missed += 1
            continue
        used.add(best)
        h = hypothesis[best]
        edits += Levenshtein.distance(ref_t, normalise_subtitle(h.text))
        starts.append(abs(h.start - r.start))
        ends.append(abs(h.end - r.end))

    def _m(x: list[float], f: Callable[[list[float]], float]) -> float:
        return float(f(x)) if x else float("nan")

    return SubtitleScore(
        cer=edits / chars if chars else 0.0,
        matched=len(starts),
        missed=missed,
        extra=len(hypothesis) - len(used),
        start_error_mean=_m(starts, np.mean),
        start_error_max=_m(starts, np.max),
        end_error_mean=_m(ends, np.mean),
        end_error_max=_m(ends, np.max),
    )
