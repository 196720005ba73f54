"""Deterministic kill points for tests of resumability: ``PERR_KILL_AT=<point>:<n>`` makes the process
SIGKILL itself when `point` is reached for the n-th time (counted per process).
``PERR_KILL_NODE_AT=<point>:<n>`` SIGKILLs the process group of the process's parent instead: set in
the environment of a Ray worker node started by a test (``ray start --block`` in its own session), a
task's worker process takes down its raylet's group — the whole node, with the tasks in flight — as a
lost machine would. (Ray puts each worker process in a group of its own, so its own group is not enough.)

Long jobs call :func:`checkpoint_reached` right after they made a unit of work durable (a clip's npz,
a video's ``done`` marker, an epoch's checkpoint), so a test can stop a run at an exact place instead of
racing a timer against the work. Unset (the normal case), it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "PERR_KILL_AT"
NODE_ENV = "PERR_KILL_NODE_AT"
_seen: Counter[str] = Counter()


def checkpoint_reached(point: str) -> None:
    """Count `point`; SIGKILL this process (``PERR_KILL_AT``) or its parent's process group
    (``PERR_KILL_NODE_AT``) when the variable names it and its count is reached."""
    for env in (ENV, NODE_ENV):
        spec = os.environ.get(env)
        if not spec:
            continue
        name, _, n = spec.partition(":")
        if name != point:
            continue
        _seen[point] += 1
        if _seen[point] >= int(n or 1):
            if env == NODE_ENV:
                os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
