"""Every knob of `perr build`, declared once: default, bounds and help feed both the Python API and
the CLI options (:mod:`perr.settings`). Its digest decides whether finished work is reused on resume."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from perr.construct.ocr import OCR_ENGINES
from perr.construct.shots import SHOT_DETECTORS
from perr.faces import FACE_DETECTORS
from perr.people import PERSON_DETECTORS
from perr.settings import check_settings, setting

SUBTITLE_MODES = ("auto", "ocr", "none")


def _detector_help() -> str:
    return "PySceneDetect detector: " + "; ".join(
        f"{n} ({s.help}, threshold {s.default:g} in [{s.low:g}, {s.high:g}])"
        for n, s in ((n, SHOT_DETECTORS.get(n)) for n in SHOT_DETECTORS)
    )


@dataclass(frozen=True)
class BuildConfig:
    detector: str = setting("content", _detector_help(), choices=SHOT_DETECTORS.names)
    threshold: float | None = setting(None, "detector threshold (default: the detector's own)")
    min_scene_len: int = setting(15, "shortest shot in frames", min=1)
    fps: float = setting(
        3.0, "sampled frames per second for faces, subtitle band and shot looks", min=0.5, max=30
    )
    max_side: int = setting(720, "long side of sampled frames (px)", min=160)
    face_detector: str = setting(
        "yunet",
        "face detector (docs/people.md says how the default was chosen)",
        choices=FACE_DETECTORS.names,
    )
    face_every: int = setting(
        3,
        "detect faces on every N-th sampled frame (and on each shot's first): the small-face detectors cost "
        "several times MediaPipe, and faces move little in 1/fps s",
        min=1,
        max=10,
    )
    face_min_side: int | None = setting(
        880,
        "upscale a sampled frame whose long side is under this before face detection, so that faces of "
        "~15 px are found (yunet, centerface; the others ignore it; costs the extra pixels)",
        min=160,
    )
    face_min_confidence: float | None = setting(
        None, "face detector confidence floor (default: the detector's own)", min=0.0, max=1.0
    )
    min_face: float = setting(10.0, "smaller faces and bodies (px at --max-side) are ignored", min=0.0)
    max_faces: int = setting(
        64, "faces (and bodies) kept per sampled frame, largest first: a crowd stays bounded", min=1
    )
    person_detector: str = setting(
        "none",
        "person (body) detector for people without a visible face: from behind, far away ('none': off)",
        choices=lambda: ("none", *PERSON_DETECTORS.names()),
    )
    person_fps: float = setting(
        1.0, "person-detector runs per second of a shot (and on each shot's first sample)", min=0.1, max=30
    )
    embeddings_per_track: int = setting(2, "identity descriptors per face track (~9 ms each)", min=1, max=10)
    identity_min_face: float = setting(
        20.0, "face height (px at --max-side) a track needs for an identity descriptor", min=0.0
    )
    cluster_threshold: float = setting(
        0.5, "dlib distance joining person tracks into one character, over the whole video", min=0.1, max=1.5
    )
    min_occurrences: int = setting(2, "sampled frames a character needs inside a clip", min=1)
    max_characters: int = setting(6, "drop windows with more characters than this (paper: 6)", min=2)
    n_candidates: int = setting(3, "pair candidates per clip (paper: top 3)", min=2)
    min_clip: float = setting(5.0, "shortest clip proposal (s)", min=0.5)
    max_clip: float = setting(35.0, "longest clip proposal (s)", min=1.0)
    segment_similarity: float = setting(
        0.5,
        "histogram intersection a shot needs with a recent shot to join its story segment (-1: one segment)",
        min=-1.0,
        max=1.0,
    )
    segment_lookback: float = setting(30.0, "seconds back a shot may resemble to join a segment", min=0.0)
    segment_people_lookback: float = setting(
        20.0, "seconds back a shot may share a character with to join a segment", min=0.0
    )
    segment_min_seconds: float = setting(
        5.0, "a story segment shorter than this joins its closest neighbour (0: never)", min=0.0
    )
    subtitles: str = setting(
        "auto", "auto (sidecar .srt / embedded stream, else OCR) | ocr | none", choices=SUBTITLE_MODES
    )
    ocr_engine: str = setting("rapidocr", "OCR engine", choices=OCR_ENGINES.names)
    band_top: float = setting(
        0.70, "top of the subtitle band, as a fraction of the frame height", min=0.0, max=0.95
    )

    def __post_init__(self) -> None:
        check_settings(self)
        if self.max_clip < self.min_clip:
            raise ValueError(f"max_clip {self.max_clip} is shorter than min_clip {self.min_clip}")

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]
