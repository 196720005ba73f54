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


def available_memory() -> int | None:
    """Bytes of memory the kernel could give this process now without swapping (Linux's MemAvailable);
    None where that is unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


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


#: glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: allocations above this size get their own mapping, returned to the OS when freed
MMAP_THRESHOLD = 16 << 20
#: free memory at the top of a heap kept for reuse instead of returned (glibc's own dynamic maximum)
TRIM_THRESHOLD = 64 << 20


def bound_heap_growth() -> bool:
    """Stop glibc's malloc from letting a long training run's RSS creep up: fix its mmap threshold at
    16 MB (and the trim threshold at 64 MB, the most its dynamic rule would reach). By default the
    threshold rises to the largest block freed so far (up to 32 MB), so the 20 MB batches of the
    evaluation pass (batch 64) are then carved from the heaps of the loader's and helpers' threads, and
    fragment them: a d-64 run on the ERATO-sized store reached 1.39 GB instead of 0.76. Fixed, those
    blocks are mapped and unmapped whole, while every training-step block (< 16 MB at the paper's d 256)
    stays on the heap as before: no measurable cost a step. Process-wide, and only on glibc (False
    elsewhere, or where libc refuses)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    return bool(ok_trim and ok_mmap)
