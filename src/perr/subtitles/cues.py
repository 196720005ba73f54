"""The subtitle cue: one timed line on the video clock, whatever it came from (SRT, stream, OCR)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Cue:
    """One subtitle event on the video clock (seconds); `score` is the OCR confidence (1 for text files)."""

    start: float
    end: float
    text: str
    score: float = 1.0
