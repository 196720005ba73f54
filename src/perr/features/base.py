"""The extractor interface, its registry and the per-clip context every extractor reads.

An extractor turns one clip into one modality's sequence: ``extract(ctx) -> (features [T, d], mask
[T])``. Missing evidence (a character off screen, no subtitle, no audio track) is a zero row with
mask 0, never an exception; exceptions mean the clip itself is broken and are isolated per clip by
:mod:`perr.features.workers`. Extractors live one per file in :mod:`perr.features.extractors` and
register themselves; the configuration names the extractor of each modality, so adding one is one file.

The :class:`ClipContext` decodes the clip's frames and audio once, lazily, and holds a cache so that
work two extractors share (face detection for ``person_a`` and ``person_b``) runs once per clip.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from perr.features.config import ExtractConfig
from perr.features.sampling import Sampling
from perr.manifest import Character, Clip
from perr.registry import Registry
from perr.store import ModalitySpec
from perr.video import source_audio, source_duration, source_frames_at
from perr.video.audio import AudioSpans


@dataclass
class ClipContext:
    """One clip ready for extraction: its sampled times, lazily decoded frames/audio, a shared cache."""

    clip: Clip
    base: Path
    sampling: Sampling = field(default_factory=Sampling)
    frame_max_side: int | None = 640
    audio_rate: int = 16000
    cache: dict[str, Any] = field(default_factory=dict)
    #: AudioSpans of (file, rate) shared by the clips of one video (perr.features.video_pass); None: own
    shared_audio: Callable[[Path, int], AudioSpans] | None = None

    def __post_init__(self) -> None:
        self.video_path = self.clip.resolve(self.clip.video, self.base)
        assert self.video_path is not None
        if not self.video_path.exists():
            raise FileNotFoundError(f"clip {self.clip.clip_id}: video not found: {self.video_path}")
        self.audio_path = self.clip.resolve(self.clip.audio, self.base) or self.video_path
        self.start = self.clip.start
        self.end = (
            self.clip.end if self.clip.end is not None else source_duration(self.video_path, self.clip.fps)
        )
        self.times, self.valid = self.sampling.times(self.start, self.end)

    @property
    def T(self) -> int:
        return self.sampling.T

    @property
    def frames(self) -> np.ndarray:
        """RGB uint8 [T, H, W, 3], decoded once per clip (the video is read a single time)."""
        if "frames" not in self.cache:
            self.cache["frames"] = source_frames_at(
                self.video_path, self.times, self.clip.fps, self.frame_max_side
            )
        return self.cache["frames"]

    @property
    def audio(self) -> np.ndarray | None:
        """Mono float32 samples of [start, end] at ``audio_rate``; None when there is no audio track."""
        return self.audio_at(self.audio_rate)

    def audio_at(self, rate: int) -> np.ndarray | None:
        """The clip's audio at another sample rate (decoded once per rate)."""
        key = f"audio@{rate}"
        if key not in self.cache:
            if self.shared_audio is not None and not self.audio_path.is_dir():
                self.cache[key] = self.shared_audio(self.audio_path, rate).span(self.start, self.end)
            else:
                self.cache[key] = source_audio(self.audio_path, rate, self.start, self.end)
        return self.cache[key]

    @property
    def pair(self) -> tuple[Character | None, Character | None]:
        """The two characters of the pair (:meth:`perr.manifest.Clip.pair_ids`); None in a role the clip
        cannot fill."""
        if not self.clip.characters:
            return None, None
        a, b = self.clip.pair_ids()
        return (
            self.clip.character(a) if a is not None else None,
            self.clip.character(b) if b is not None else None,
        )

    def on_screen(self, character: Character | None) -> np.ndarray:
        """[T] bool: the character is on screen at each sampled time per its manifest spans."""
        if character is None:
            return np.zeros(self.T, dtype=bool)
        on = np.zeros(self.T, dtype=bool)
        for s in character.spans:
            on |= (self.times >= s.start - 1e-6) & (self.times <= s.end + 1e-6)
        return on & self.valid

    def path(self, p: str | os.PathLike | None) -> Path | None:
        return self.clip.resolve(None if p is None else str(p), self.base)


class Extractor(ABC):
    """One modality's feature extractor. Subclasses set ``name`` and ``version``, give ``dim``, and
    build themselves from the extraction config in :meth:`create`.

    Models are loaded lazily on first use and kept for the life of the instance, so a worker
    process (local or Ray) pays the load once for all its clips.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    #: Whether it reads the clip's frames / audio (the video pass decodes only what some extractor reads).
    needs_frames: ClassVar[bool] = False
    needs_audio: ClassVar[bool] = False

    @classmethod
    def create(cls, cfg: ExtractConfig, modality: str, shared: dict[str, Any]) -> Extractor:
        """The extractor for `modality` under `cfg`; `shared` lets extractors of one config share work."""
        return cls()

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @property
    def extractor_id(self) -> str:
        """What the store header records as the extractor: name plus options that change the output."""
        return self.name

    @abstractmethod
    def extract(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        """Features float32 [T, dim] and mask uint8 [T] for one clip; rows with mask 0 are zeros."""

    def spec(self, modality: str) -> ModalitySpec:
        return ModalitySpec(name=modality, dim=self.dim, extractor=self.extractor_id, version=self.version)

    def empty(self, T: int) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((T, self.dim), np.float32), np.zeros(T, np.uint8)


EXTRACTORS: Registry[type[Extractor]] = Registry("extractor")


def finish(x: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply the sampling's validity, zero masked rows and fix dtypes (every extractor ends here)."""
    m = (np.asarray(mask).astype(bool) & valid).astype(np.uint8)
    x = np.where(m[:, None].astype(bool), np.asarray(x, dtype=np.float32), 0.0).astype(np.float32)
    return x, m
