"""Run one command as a child process and measure it as a user's machine would feel it: wall time, CPU
time of the whole process tree, and peak memory of the whole tree (the command's worker processes
included), sampled from /proc.

`peak_rss_mb` is the largest sum of the tree's resident set sizes seen at one moment, read from
/proc/PID/statm every 0.5 s (a peak shorter than that can be missed). `peak_pss_mb` is the same with
proportional set sizes, which count shared pages (model weights mapped by several workers, libraries)
once; PSS comes from /proc/PID/smaps_rollup, a walk of every page table, so it is read only when the RSS
sum reaches a new peak. The measurement must not slow what it measures: reading smaps_rollup of every
process five times a second took about a fifth of a core and slowed a 45-s feature extraction by ~20 %.
CPU time comes from `os.wait4`, which includes every descendant the child waited for; processes that
are not the child's (`also`: a running Ray cluster's nodes) are counted from /proc/PID/stat: each
process's last sampled time, less what it had used before the run (a process that ends between two
samples loses at most 0.5 s; Ray's raylet does not collect its workers' times, so wait4-style totals
would miss them).
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


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _rss_kb(pid: int) -> int:
    """Resident set size of one process in KiB (cheap: counters, no page-table walk); 0 when gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE_KB
    except (OSError, IndexError, ValueError):
        return 0


def _pss_kb(pid: int) -> int:
    """Proportional set size of one process in KiB (walks its page tables); 0 when gone."""
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    for line in rollup.splitlines()[1:]:
        key, _, rest = line.partition(":")
        if key == "Pss":
            return int(rest.split()[0])
    return 0


def _own_cpu(pids: list[int]) -> dict[int, float]:
    """User + system seconds of each live process (its own, not its children's)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def machine_times() -> dict[str, float] | None:
    """This machine's CPU seconds so far, all cores (Linux /proc/stat): busy, idle, and steal (time the
    hypervisor gave the vCPUs to other guests, which stretches wall time without showing as our CPU)."""
    try:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return {
        "busy": (user + nice + system + irq + softirq) / tick,
        "idle": (idle + iowait) / tick,
        "steal": steal / tick,
    }


def machine_delta(before: dict[str, float] | None) -> dict[str, float] | None:
    after = machine_times()
    if before is None or after is None:
        return None
    return {k: round(after[k] - before[k], 2) for k in after}


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, log: Path | None = None, also: tuple[int, ...] = ()
) -> dict[str, Any]:
    """Run `argv` to completion; its exit status, wall/CPU seconds and peak tree memory. `also`: roots of
    other process trees that do the command's work (a Ray cluster's nodes), measured with it."""
    out = open(log, "w") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    load_before = os.getloadavg()
    machine_before = machine_times()
    also_cpu_before = _own_cpu([p for root in also for p in _tree(root)])
    also_cpu_last = dict(also_cpu_before)
    tree_cpu_last: dict[int, float] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    peak = {"rss": 0, "pss": 0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            others = [p for root in also for p in _tree(root)]
            also_cpu_last.update(_own_cpu(others))
            mine = _tree(proc.pid)
            tree_cpu_last.update(_own_cpu(mine))
            pids = [*mine, *others]
            rss = [_rss_kb(p) for p in pids]
            peak["processes"] = max(peak["processes"], sum(1 for r in rss if r))
            if sum(rss) > peak["rss"]:
                peak["rss"] = sum(rss)
                peak["pss"] = max(peak["pss"], sum(_pss_kb(p) for p in pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    also_cpu_last.update(_own_cpu([p for root in also for p in _tree(root)]))
    also_cpu = sum(t - also_cpu_before.get(pid, 0.0) for pid, t in also_cpu_last.items())
    proc.returncode = os.waitstatus_to_exitcode(status)
    if log is not None:
        out.close()
    return {
        "returncode": proc.returncode,
        "wall_seconds": wall,
        "cpu_user_seconds": usage.ru_utime,
        "cpu_system_seconds": usage.ru_stime,
        "cpu_seconds": usage.ru_utime + usage.ru_stime + also_cpu,
        "cpu_seconds_other_trees": also_cpu if also else None,
        # every process seen in the command's tree, summed from samples: counts workers whose parent does
        # not collect their times (a local Ray instance's raylet), which wait4 misses
        "cpu_seconds_sampled": sum(tree_cpu_last.values()) + also_cpu,
        "peak_rss_mb": peak["rss"] / 1024,
        "peak_pss_mb": peak["pss"] / 1024,
        "max_processes": peak["processes"],
        "max_rss_one_process_mb": usage.ru_maxrss / 1024,
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        # the whole machine's CPU seconds over the run (every core): busy includes ours, so busy minus
        # cpu_seconds_sampled is other processes; steal is time another guest had our vCPUs
        "machine_cpu_seconds": machine_delta(machine_before),
    }
