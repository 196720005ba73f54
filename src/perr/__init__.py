"""perr — Pairwise Emotional Relationship Recognition in drama and movie videos (Gao et al., ACM MM'21).

Python API mirroring the CLI::

    import perr
    results = perr.predict("clip.mp4", checkpoint="runs/demo/runs/smta-transformer/task-5/all/seed-0/best.pt")
"""

from __future__ import annotations

import os
from typing import Any

# OpenMP threads that spin while waiting make small CPU models up to 25x slower when the cores are shared
# (measured on 2-core machines); passive waiting costs nothing on an idle machine. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from perr.version import __version__


def predict(paths: Any, checkpoint: Any, out: Any = "runs/predict", **kwargs: Any) -> list[Any]:
    """`perr predict` as a function: see :func:`perr.inference.predict`. Imported on first call, so that
    `import perr` and `perr --help` stay instant (the prediction path loads torch and the video stack)."""
    from perr.inference import predict as _predict

    return _predict(paths, checkpoint, out=out, **kwargs)


__all__ = ["__version__", "predict"]
