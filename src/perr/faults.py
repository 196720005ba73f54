"""Deterministic kill points for tests of resumability: ``PERR_KILL_AT=<point>:<n>`` makes the process
SIGKILL itself when `point` is reached for the n-th time (counted per process).

Long jobs call :func:`checkpoint_reached` right after they made a unit of work durable (a clip's npz,
a video's ``done`` marker, an epoch's checkpoint), so a test can stop a run at an exact place instead of
racing a timer against the work. Unset (the normal case), it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "PERR_KILL_AT"
_seen: Counter[str] = Counter()


def checkpoint_reached(point: str) -> None:
    """Count `point`; SIGKILL this process when ``PERR_KILL_AT`` names it and its count is reached."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, n = spec.partition(":")
    if name != point:
        return
    _seen[point] += 1
    if _seen[point] >= int(n or 1):
        os.kill(os.getpid(), signal.SIGKILL)
