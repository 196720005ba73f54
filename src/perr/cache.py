"""perr's cache folder for files derived from packaged models (e.g. an ONNX export of a torch network):
``$PERR_CACHE_DIR``, else ``$XDG_CACHE_HOME/perr``, else ``~/.cache/perr``. Everything in it can be
deleted; it is made again on next use."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a subfolder of it), created if needed."""
    root = os.environ.get("PERR_CACHE_DIR")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "perr"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
