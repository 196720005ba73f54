"""Run one command as a child process and measure it as a user's machine would feel it: wall time, CPU
time of the whole process tree, and peak memory of the whole tree (the command's worker processes
included), sampled from /proc.

`peak_rss_mb` is the largest sum of the tree's resident set sizes seen at one moment (sampled every
0.2 s, so a peak shorter than that can be missed); `peak_pss_mb` the same with proportional set sizes,
which count shared pages (model weights mapped by several workers, libraries) once. CPU time comes
from `os.wait4`, which includes every descendant the child waited for.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _tree(root: int) -> list[int]:
    tree, out, todo = _children(), [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; zeros when it has gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0, 0
    values = {}
    for line in rollup.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0])
    return values.get("Rss", 0), values.get("Pss", 0)


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> dict[str, Any]:
    """Run `argv` to completion; its exit status, wall/CPU seconds and peak tree memory."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    peak = {"rss": 0, "pss": 0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            pids = _tree(proc.pid)
            mem = [_memory_kb(p) for p in pids]
            peak["rss"] = max(peak["rss"], sum(m[0] for m in mem))
            peak["pss"] = max(peak["pss"], sum(m[1] for m in mem))
            peak["processes"] = max(peak["processes"], sum(1 for m in mem if m[0]))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log is not None:
        out.close()
    return {
        "returncode": proc.returncode,
        "wall_seconds": wall,
        "cpu_user_seconds": usage.ru_utime,
        "cpu_system_seconds": usage.ru_stime,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": peak["rss"] / 1024,
        "peak_pss_mb": peak["pss"] / 1024,
        "max_processes": peak["processes"],
        "max_rss_one_process_mb": usage.ru_maxrss / 1024,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
    }
