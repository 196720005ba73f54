"""One progress bar for long loops over data (generation, validation scans, epochs): rich, on stderr.

It draws only where someone watches: on a terminal, or when `PERR_PROGRESS=1` forces it (a benchmark
that checks the bar moves); `PERR_PROGRESS=0` or a non-terminal stderr (tests, logs, pipes) keeps it
silent, so callers never pass a "quiet" flag through every layer.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

#: update(done, total): `done` units of `total` finished
Update = Callable[[int, int], None]


def progress_enabled() -> bool:
    """PERR_PROGRESS=1/0 forces the bar on/off; otherwise it is on where stderr is a terminal."""
    flag = os.environ.get("PERR_PROGRESS", "").strip().lower()
    if flag in {"1", "true", "yes", "on"}:
        return True
    if flag in {"0", "false", "no", "off"}:
        return False
    return sys.stderr.isatty()


def progress_allowed(flag: bool = True) -> bool:
    """For commands with their own bars (rich decides about terminals): `flag` (their --no-progress) and
    PERR_PROGRESS=0 both turn them off."""
    return flag and os.environ.get("PERR_PROGRESS", "").strip().lower() not in {"0", "false", "no", "off"}


def progress_columns(label: str, unit: str | None = None) -> list[ProgressColumn]:
    """perr's bar: the label (bold; rich markup, may use `{task.description}`), the bar, done/total
    [, the unit], elapsed time and the ETA. Every long command draws these columns."""
    return [
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        MofNCompleteColumn(),
        *([TextColumn(unit)] if unit is not None else []),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]


@contextlib.contextmanager
def progress_bar(description: str, total: int, unit: str = "") -> Iterator[Update]:
    """A bar for `total` units; yields `update(done, total)`. Silent unless :func:`progress_enabled`."""
    enabled = progress_enabled()
    console = Console(stderr=True, force_terminal=True if enabled and not sys.stderr.isatty() else None)
    with Progress(
        *progress_columns(description, unit),
        console=console,
        disable=not enabled,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, new_total: int) -> None:
            bar.update(task, completed=done, total=new_total)

        yield update
