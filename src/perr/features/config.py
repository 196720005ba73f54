"""Everything that changes the features, declared once (default, bounds, help → Python API and CLI).
Recorded in ``extraction.json`` and in every clip file; a re-run into the same folder with another
configuration is refused."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from perr.faces import FACE_DETECTORS
from perr.features.audio_backends import AUDIO_BACKENDS
from perr.features.sampling import SCHEMES, Sampling
from perr.modalities import PERR_MODALITIES
from perr.settings import check_settings, setting

#: The registered extractor behind each modality unless `extractors` says otherwise.
DEFAULT_EXTRACTORS: dict[str, str] = {
    "person_a": "person",
    "person_b": "person",
    "background": "background",
    "audio": "audio",
    "text": "text",
}


@dataclass(frozen=True)
class ExtractConfig:
    T: int = setting(32, "timesteps per clip", min=1, flags=("--T", "-T"))
    scheme: str = setting("uniform", "uniform over the clip, or at a fixed --fps", choices=SCHEMES)
    fps: float | None = setting(None, "sampling rate for --scheme fps", min=0.001)
    modalities: tuple[str, ...] = setting(PERR_MODALITIES, "modalities to extract", cli=False)
    extractors: dict[str, str] = setting(
        help="registered extractor per modality", cli=False, default_factory=lambda: dict(DEFAULT_EXTRACTORS)
    )
    face_detector: str = setting(
        "mediapipe", "face detector of the person features", choices=FACE_DETECTORS.names
    )
    pose: bool = setting(True, "MediaPipe body pose in the person features")
    audio_backend: str = setting(
        "logmel", "audio embedding: logmel (fast), resemblyzer or aisfx", choices=AUDIO_BACKENDS.names
    )
    audio_window: float = setting(
        1.0, "seconds of sound around each step (at least clip length / T)", min=0.05
    )
    background_size: int = setting(224, "EfficientNet-lite0 input side (160 is ~2× cheaper)", min=32)
    frame_max_side: int | None = setting(640, "decode frames scaled to this longest side", min=64)

    def __post_init__(self) -> None:
        check_settings(self)
        _ = self.sampling  # bad T / scheme / fps fail here, before any clip is touched
        if not self.modalities:
            raise ValueError("no modality selected")
        unknown = [m for m in self.modalities if m not in self.extractors]
        if unknown:  # the names themselves are checked against the registry when the extractors are built
            raise ValueError(f"no extractor for modality {unknown}; known: {', '.join(self.extractors)}")

    @property
    def sampling(self) -> Sampling:
        return Sampling(T=self.T, scheme=self.scheme, fps=self.fps)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ExtractConfig:
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        if "modalities" in d:
            d["modalities"] = tuple(d["modalities"])
        return cls(**d)
