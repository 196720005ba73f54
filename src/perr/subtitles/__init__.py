"""Subtitles, shared by every stage: the cue type, SRT and cue-JSON files, text comparison."""

from perr.subtitles.cues import Cue
from perr.subtitles.files import find_sidecar_srt, read_cues_json, read_srt, write_cues_json, write_srt
from perr.subtitles.text import (
    SubtitleScore,
    cer,
    normalise_subtitle,
    partial_similarity,
    score_cues,
    text_similarity,
)

__all__ = [
    "Cue",
    "SubtitleScore",
    "cer",
    "find_sidecar_srt",
    "normalise_subtitle",
    "partial_similarity",
    "read_cues_json",
    "read_srt",
    "score_cues",
    "text_similarity",
    "write_cues_json",
    "write_srt",
]
