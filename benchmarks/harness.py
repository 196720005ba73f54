"""What every benchmark script shares: the result header, atomic result files, alternating A/B rounds, a
grid of settings, and the run-folder layout of `perr benchmark`.

    head = header("train_speed", packages=["sentence-transformers"])  # at the start of a run
    times = alternate({"old": old_step, "new": new_step}, rounds=6, block=5)
    write_result(args.out, {"setup": ..., "new_ms": times.medians()["new"]}, head)

A result file is one JSON object: the header's keys (benchmark, date, git commit, cores, CPU model and
SIMD flags, versions, load average) followed by the script's own payload. This module imports no
torch (`benchmarks.erato_scale` measures its child processes' peak RSS, which inherits the parent's).
"""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from perr.io import write_json
from perr.machine import cpu_info, package_versions

__all__ = ["Rounds", "alternate", "grid", "header", "run_dir", "seed_runs", "write_result"]

REPO = Path(__file__).resolve().parents[1]
#: versions every result records; a script adds its own (`header(packages=...)`)
PACKAGES = ("torch", "numpy", "perr")


def git_commit() -> str | None:
    """HEAD of the repository the benchmarks run from, with "+dirty" when tracked files differ from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def header(benchmark: str, packages: Sequence[str] = ()) -> dict[str, Any]:
    """The machine and code a result was measured on; take it when the run starts (the load average is
    read then: a script that wants the load at the end records it in its payload)."""
    cpu = cpu_info()
    return {
        "benchmark": benchmark,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "cores": cpu["affinity"],
        "cpu": cpu,
        "versions": package_versions([*PACKAGES, *(p for p in packages if p not in PACKAGES)]),
        "env": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }


def write_result(path: str | os.PathLike, payload: Mapping[str, Any], head: Mapping[str, Any]) -> dict:
    """Write `head` then `payload` as one JSON object, atomically (a killed run leaves the old file)."""
    result = {**head, **payload}
    write_json(path, result)
    return result


@dataclass
class Rounds:
    """What `alternate` measured: per variant, one value per round (a block's median, or whatever the
    variant returned when it is not a number)."""

    values: dict[str, list[Any]] = field(default_factory=dict)

    def medians(self) -> dict[str, float]:
        """Per variant, the median over rounds."""
        return {k: statistics.median(v) for k, v in self.values.items()}


def alternate(
    variants: Mapping[str, Callable[[], Any]],
    rounds: int,
    block: int = 1,
    warmup: int = 0,
    after_round: Callable[[int], None] | None = None,
) -> Rounds:
    """A/B(/C…) in one process: each round runs every variant `block` times in a row, in an order that is
    reversed every other round, so a drift of the machine's speed hits all variants alike. A round's value
    of a variant is the median of its block when the calls return numbers, else the last call's return.
    `warmup` calls of each variant come first and are not recorded; `after_round(r)` runs after round r
    (say, to read a kernel floor)."""
    for _ in range(warmup):
        for fn in variants.values():
            fn()
    out = Rounds({k: [] for k in variants})
    names = list(variants)
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            got = [variants[k]() for _ in range(block)]
            numeric = all(isinstance(g, int | float) for g in got)
            out.values[k].append(statistics.median(got) if numeric else got[-1])
        if after_round is not None:
            after_round(r)
    return out


def grid(axes: Mapping[str, Sequence[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination of the axes' values, as {axis: value}, the first axis outermost."""
    for values in itertools.product(*axes.values()):
        yield dict(zip(axes, values, strict=True))


def run_dir(out: Path, model: str, task: str, drop: str | None, seed: int | str) -> Path:
    """The folder of one run of `perr benchmark --out OUT` (perr.benchmark.run_dir, imported when used)."""
    from perr.benchmark import run_dir as layout

    return layout(out, model, task, drop, seed)


def seed_runs(out: Path, model: str, task: str, drop: str | None = None) -> list[Path]:
    """The run folders of every seed `perr benchmark --out OUT` has for one model × task × drop, in seed
    order (perr.benchmark.run_dir's layout)."""
    found = run_dir(out, model, task, drop, 0).parent.glob(run_dir(out, model, task, drop, "*").name)
    return sorted(found, key=lambda p: int(p.name.rsplit("-", 1)[1]))
