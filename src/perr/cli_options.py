"""Command-line options shared by the long jobs (`perr build run`, `perr features extract`): where their
units of work run (:mod:`perr.execution`). One definition, so every command words them the same way."""

from __future__ import annotations

from enum import StrEnum

import typer

from perr.execution import ExecutionConfig


class BackendChoice(StrEnum):
    local = "local"
    ray = "ray"


BACKEND = typer.Option(
    BackendChoice.local,
    help="local: worker processes on this machine; ray: Ray tasks (a local instance, or a cluster with "
    "--address)",
)
JOBS = typer.Option(0, min=0, help="local worker processes (0 = one per core, at most 4; 1 = this process)")
ADDRESS = typer.Option(
    None, help="Ray cluster to join, HOST:PORT (default: start a local Ray instance for this run)"
)
NUM_CPUS = typer.Option(None, min=1, help="CPUs of the local Ray instance (default: all)")
NO_PROGRESS = typer.Option(False, "--no-progress", help="no progress bars (logs, pipes, scripts)")
NO_SHARED_FS = typer.Option(
    False,
    "--no-shared-fs",
    help="with --backend ray: the nodes do not share the output folder; each task returns the files it "
    "wrote and this process writes them (inputs must still be at the same path on every node)",
)


def execution_config(
    backend: BackendChoice, jobs: int, address: str | None, num_cpus: int | None, no_shared_fs: bool = False
) -> ExecutionConfig:
    """The options above as an ExecutionConfig; --address, --num-cpus and --no-shared-fs need --backend ray."""
    if backend is not BackendChoice.ray and (address or num_cpus or no_shared_fs):
        raise typer.BadParameter("--address, --num-cpus and --no-shared-fs are options of --backend ray")
    return ExecutionConfig(
        backend=backend.value, jobs=jobs, address=address, num_cpus=num_cpus, shared_fs=not no_shared_fs
    )
