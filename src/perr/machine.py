"""What a benchmark records about the machine it ran on: CPU model, cores, SIMD flags, package versions.

Timings on shared machines are only comparable with this beside them (and the load average, which each
benchmark samples before and after its run)."""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_info() -> dict[str, object]:
    """CPU model, logical cores, cores this process may use, and the SIMD flags that change kernel speed."""
    flags: list[str] = []
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = [f for f in SIMD_FLAGS if f in have]
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "cores": os.cpu_count(), "affinity": affinity, "flags": flags}


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Python and each named distribution's version ('absent' when not installed)."""
    out = {"python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def physical_cores() -> int:
    """Physical cores among the CPUs this process may use (SMT siblings counted once); at least 1.

    Intra-op threads beyond the physical cores share execution units and mostly add synchronisation, so
    this, not the logical count, is what a compute-bound thread pool should use; a container's CPU quota
    (:func:`cpu_quota`) caps it."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    try:
        cpu = phys = core = None
        for line in [*Path("/proc/cpuinfo").read_text().splitlines(), ""]:
            key, _, value = (s.strip() for s in line.partition(":"))
            if key == "processor":
                cpu = int(value)
            elif key == "physical id":
                phys = value
            elif key == "core id":
                core = value
            elif not line.strip() and cpu is not None:
                if cpu in allowed:
                    cores.add((phys or "0", core if core is not None else str(cpu)))
                cpu = phys = core = None
    except (OSError, ValueError):
        cores = set()
    count = max(1, len(cores) or len(allowed))
    quota = cpu_quota()
    return min(count, max(1, int(quota))) if quota is not None else count


def cpu_quota() -> float | None:
    """CPUs' worth of time a container's cgroup grants this process (`docker --cpus`), None if unlimited."""
    for quota_file, period_file in (
        ("/sys/fs/cgroup/cpu.max", None),  # cgroup v2: "<quota> <period>" or "max <period>"
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),  # v1
    ):
        try:
            fields = Path(quota_file).read_text().split()
            if period_file is not None:
                fields.append(Path(period_file).read_text().strip())
        except OSError:
            continue
        if len(fields) >= 2 and fields[0] not in ("max", "-1"):
            try:
                return int(fields[0]) / int(fields[1])
            except (ValueError, ZeroDivisionError):
                return None
        return None
    return None


def idle_priority_supported() -> bool:
    """Whether a thread can ask to run only on otherwise idle CPU time (Linux's SCHED_IDLE)."""
    return hasattr(os, "SCHED_IDLE") and hasattr(os, "sched_setscheduler")


def lower_this_thread() -> int | None:
    """Put the calling thread on SCHED_IDLE: it then runs only where no ordinary thread wants the core,
    so a helper beside a thread pool that fills every core takes the pool's idle moments (its waits at
    barriers, the step's single-threaded Python) instead of preempting it. The thread's native id, or
    None where the OS refuses or lacks the policy."""
    if not idle_priority_supported():
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: the calling thread (Linux)
    except OSError:
        return None
    return threading.get_native_id()


def restore_thread(native_id: int) -> bool:
    """Give a thread lowered by :func:`lower_this_thread` an ordinary share of the CPU again. Linux lets
    only a privileged process (root, CAP_SYS_NICE, or an RLIMIT_NICE that allows nice 0) do this:
    False where it refuses, so the caller can stop relying on that thread instead."""
    try:
        os.sched_setscheduler(native_id, os.SCHED_OTHER, os.sched_param(0))
    except (OSError, AttributeError):
        return False
    return True
