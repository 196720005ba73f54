"""The contract between our Label Studio labeling config and the code that reads its export back.

Export writes controls with these names; import and agreement read results by the same names, so a
renamed control is a one-line change here. Subtitles travel as one editable line per event,
`[start-end] text`, with times in seconds of the source video, so corrections keep their timing.
"""

from __future__ import annotations

import re

from perr.errors import PerrError
from perr.manifest import SubtitleEvent


class AnnotationError(PerrError, ValueError):
    """An export, users file or option the annotate commands cannot use; the message names it."""


#: Object tag everything is attached to (the clip video).
VIDEO = "video"
#: Control names (the `from_name` of each result in Label Studio's export).
SUBTITLES = "subtitles"
DISCARD = "discard"
DISCARD_VALUE = "discard"
DISCARD_REASON = "discard_reason"
PAIR = "pair"
LABEL = "label"

#: `model_version` of the prediction that pre-fills the OCR subtitles (shown to annotators as a prelabel).
OCR_MODEL_VERSION = "perr-ocr"

_LINE = re.compile(r"^\s*\[\s*(\d+(?:\.\d+)?)\s*[-–]\s*(\d+(?:\.\d+)?)\s*\]\s?(.*?)\s*$", re.DOTALL)


def format_subtitle_line(event: SubtitleEvent) -> str:
    """One editable line: `[12.30-14.85] text` (seconds of the source video, 2 decimals)."""
    return f"[{event.start:.2f}-{event.end:.2f}] {event.text}"


def parse_subtitle_line(line: str) -> SubtitleEvent:
    """Inverse of `format_subtitle_line`; ValueError says what is wrong with the line."""
    m = _LINE.match(line)
    if m is None:
        raise ValueError(f"expected '[start-end] text' with times in seconds, got {line!r}")
    start, end, text = float(m.group(1)), float(m.group(2)), m.group(3)
    if end < start:
        raise ValueError(f"end {end} is before start {start} in {line!r}")
    if not text:
        raise ValueError(f"empty subtitle text in {line!r}")
    return SubtitleEvent(start=start, end=end, text=text)
