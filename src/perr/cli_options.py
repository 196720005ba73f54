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


def execution_config(
    backend: BackendChoice, jobs: int, address: str | None, num_cpus: int | None
) -> ExecutionConfig:
    """The options above as an ExecutionConfig; --address and --num-cpus need --backend ray."""
    if backend is not BackendChoice.ray and (address or num_cpus):
        raise typer.BadParameter("--address and --num-cpus are options of --backend ray")
    return ExecutionConfig(backend=backend.value, jobs=jobs, address=address, num_cpus=num_cpus)
