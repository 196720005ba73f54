"""One execution layer for the long jobs (build, feature extraction, benchmark runs): units of work go to
an executor, which runs them here, in local worker processes, or as Ray tasks on a cluster.

- ``inline``: in this process, one after another (``--jobs 1``; what tests and `perr predict` use).
- ``local``: ``--jobs N`` spawned worker processes on this machine.
- ``ray``: Ray tasks, on a local Ray instance or on a cluster (``--address HOST:PORT``); each unit
  declares the CPUs (and GPUs) it needs, so Ray places it; a task whose worker or node dies is retried
  elsewhere (``max_retries``).

Units are plain module-level functions whose arguments pickle. Data movement has two modes:

- shared filesystem (the default): inputs are read, and each unit writes its outputs atomically, at
  paths every node sees (an NFS/CephFS/Lustre mount at the same path everywhere); a unit returns only a
  small status, so nothing large travels back, and a re-run after a crashed driver resumes from what the
  units wrote.
- ``shared_fs=False`` (``--no-shared-fs``): a unit writes into a scratch folder on its node and returns the
  files it wrote; the driver writes them, atomically, into the output folder. Inputs must still be at the
  same path on every node (a read-only copy or mount); only outputs travel, through Ray's object store.

Worker processes keep their models in module-level caches, loaded on first use.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from perr.io import atomic_path

Backend = Literal["inline", "local", "ray"]
#: Retries of a Ray task whose worker process or node died (the unit is idempotent: it rewrites its output).
RAY_RETRIES = 3
#: Ray's Unix sockets live at <temp>/session_<date>_<pid>/sockets/plasma_store and must fit in 107 bytes.
_RAY_TEMP_MAX = 40


def cores() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class ExecutionConfig:
    """Where units run. `jobs` is the number of local worker processes (0: one per core, at most 4)."""

    backend: Backend = "local"
    jobs: int = 0
    address: str | None = None  # Ray cluster to join; None: a local Ray instance
    num_cpus: int | None = None  # CPUs of a local Ray instance (None: all)
    shared_fs: bool = True  # False: units return their output files and the driver writes them

    def workers(self) -> int:
        if self.backend == "inline":
            return 1
        return self.jobs or max(1, min(cores(), 4))


class InlineExecutor:
    """Runs each unit at once in this process; `finalizer` releases what the initializer loaded."""

    backend = "inline"
    slots = 1

    def __init__(self, finalizer: Callable[[], None] | None = None) -> None:
        self._finalizer = finalizer

    def submit(self, fn: Callable[..., Any], *args: Any, num_cpus: float = 1, num_gpus: float = 0) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as e:
            fut.set_exception(e)
        return fut

    def renew(self) -> None:
        return None

    def resources(self) -> dict[str, float]:
        return {"CPU": float(cores())}

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None


class ProcessExecutor:
    """Spawned worker processes (not forked: native model threads do not survive fork)."""

    backend = "local"

    def __init__(
        self, jobs: int, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self.slots = jobs
        self._init, self._initargs = initializer, initargs
        self._ex = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.slots, mp_context=mp.get_context("spawn"), initializer=self._init, initargs=self._initargs
        )

    def submit(self, fn: Callable[..., Any], *args: Any, num_cpus: float = 1, num_gpus: float = 0) -> Future:
        return self._ex.submit(fn, *args)

    def renew(self) -> None:
        """Fresh workers after one died (a broken pool cannot be used again)."""
        self._ex.shutdown(cancel_futures=True)
        self._ex = self._new()

    def resources(self) -> dict[str, float]:
        return {"CPU": float(self.slots)}

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Block until every worker has started and run its initializer (benchmarks exclude start-up)."""
        pids: set[int] = set()
        t_end = time.monotonic() + timeout
        while len(pids) < self.slots and time.monotonic() < t_end:
            pids.update(f.result() for f in [self._ex.submit(_ping, 0.5) for _ in range(self.slots)])

    def close(self) -> None:
        self._ex.shutdown(cancel_futures=True)


def _ping(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


class RayExecutor:
    """Units as Ray tasks: on a cluster (`address`) or a local instance whose temp files and auth token
    stay in `run_dir/ray`. Ray restarts a task whose worker or node died (`RAY_RETRIES`)."""

    backend = "ray"

    def __init__(
        self,
        run_dir: Path,
        address: str | None = None,
        num_cpus: int | None = None,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
    ) -> None:
        import ray

        self._ray = ray
        self._started = False
        self._saved = {k: os.environ.get(k) for k in ("RAY_AUTH_TOKEN_PATH", "RAY_TMPDIR")}
        self._cleanup: list[Path] = []
        if not ray.is_initialized():
            self._started = True
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                tmp, token = local_ray_dirs(run_dir)
                if tmp != (run_dir / "ray").resolve():
                    self._cleanup.append(tmp)
                # Ray 2.60 turns token auth on for a new local instance and would write its token to
                # ~/.ray: hand it one kept in the run dir instead (unless the user set up a token).
                if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
                    os.environ["RAY_AUTH_TOKEN_PATH"] = str(token)
                os.environ["RAY_TMPDIR"] = str(tmp)
                ray.init(
                    num_cpus=num_cpus or cores(),
                    include_dashboard=False,
                    _temp_dir=str(tmp),
                    log_to_driver=False,
                )
        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._init, self._initargs = initializer, initargs
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], *args: Any, num_cpus: float = 1, num_gpus: float = 0) -> Future:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(_run_with_init)
        ref = remote.options(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=RAY_RETRIES).remote(
            self._init, self._initargs, fn, *args
        )
        return ref.future()

    def renew(self) -> None:
        return None

    def resources(self) -> dict[str, float]:
        """The cluster's resources (CPU, GPU, memory, …) as Ray reports them."""
        return dict(self._ray.cluster_resources())

    def close(self) -> None:
        if self._started:
            self._ray.shutdown()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for d in self._cleanup:
            shutil.rmtree(d, ignore_errors=True)


_INITIALISED: set[tuple[Any, ...]] = set()


def _run_with_init(
    init: Callable[..., None] | None, initargs: tuple[Any, ...], fn: Callable[..., Any], *args: Any
) -> Any:
    """A Ray task: the executor's initializer once per worker process, then the unit."""
    if init is not None:
        key = (init.__module__, init.__qualname__, repr(initargs))
        if key not in _INITIALISED:
            init(*initargs)
            _INITIALISED.add(key)
    return fn(*args)


Executor = InlineExecutor | ProcessExecutor | RayExecutor


def make_executor(
    cfg: ExecutionConfig,
    run_dir: Path,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    finalizer: Callable[[], None] | None = None,
) -> Executor:
    """The executor `cfg` names (`inline` also for ``local`` with one job: no process to spawn).
    `initializer(*initargs)` runs once in each worker process; `finalizer` ends the inline one."""
    if cfg.backend == "ray":
        return RayExecutor(run_dir, cfg.address, cfg.num_cpus, initializer, initargs)
    if cfg.backend == "inline" or cfg.workers() == 1:
        if initializer is not None:
            initializer(*initargs)
        return InlineExecutor(finalizer)
    if cfg.backend == "local":
        return ProcessExecutor(cfg.workers(), initializer, initargs)
    raise ValueError(f"unknown execution backend {cfg.backend!r}; choose inline, local or ray")


def local_ray_dirs(out: Path) -> tuple[Path, Path]:
    """Temp folder and auth-token file for an in-process Ray instance: inside the run dir (``DIR/ray``),
    or — when that path is too long for Ray's socket names — a short private folder in the system temp
    dir that is removed after the run (its location is noted in ``DIR/ray/TEMP_DIR``)."""
    run = (out / "ray").resolve()
    run.mkdir(parents=True, exist_ok=True)
    token = run / "auth_token"
    if not token.exists():
        with atomic_path(token) as t:
            t.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    if len(str(run)) <= _RAY_TEMP_MAX:
        return run, token
    tmp = Path(tempfile.mkdtemp(prefix="perr-ray-"))
    (run / "TEMP_DIR").write_text(str(tmp) + "\n", encoding="utf-8")
    return tmp, token


def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``fn(*args, **kwargs)``: executors take positional arguments only, so a unit with keyword
    arguments travels as this call."""
    return fn(*args, **kwargs)


def in_scratch(
    fn: Callable[..., Any], output: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, dict[str, bytes]]:
    """Run a unit with its output folder (its keyword argument `output`) replaced by a scratch folder; its
    result and the files it wrote there (path relative to the folder → bytes). For nodes without the
    shared output folder: the driver writes the files (:func:`write_returned`)."""
    scratch = Path(tempfile.mkdtemp(prefix="perr-unit-"))
    try:
        result = fn(*args, **{**kwargs, output: str(scratch)})
        files = {
            str(p.relative_to(scratch)): p.read_bytes() for p in sorted(scratch.rglob("*")) if p.is_file()
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result, files


def write_returned(folder: str | os.PathLike, files: dict[str, bytes]) -> None:
    """Write files a unit returned into its output folder, each atomically."""
    root = Path(folder)
    for rel, data in files.items():
        target = root / rel
        if root.resolve() not in target.resolve().parents:
            raise ValueError(f"a unit returned a file outside its output folder: {rel!r}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)


class Runner:
    """Units on an executor, results as they complete. A worker process that dies (a native crash, the
    out-of-memory killer) breaks a local pool: the units still pending are submitted again to fresh
    workers, and a unit that was pending at two breaks fails alone with the reason. Ray retries lost
    tasks itself (`RAY_RETRIES`); one that still fails comes back as its exception.

    `shared_fs=False`: a unit submitted with `output` (the name of its output-folder keyword argument)
    runs in a scratch folder on its node and the files it wrote are written here (module docstring)."""

    def __init__(self, executor: Executor, retries: int = 1, shared_fs: bool = True) -> None:
        self.executor, self.retries = executor, retries
        self.returns_files = not shared_fs and executor.backend == "ray"
        self._pending: dict[Future, tuple[Any, Callable[..., Any], tuple[Any, ...], dict[str, float]]] = {}
        self._breaks: dict[Any, int] = {}
        self._outputs: dict[Any, str] = {}

    def submit(
        self,
        key: Any,
        fn: Callable[..., Any],
        *args: Any,
        num_cpus: float = 1,
        num_gpus: float = 0,
        output: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Run ``fn(*args, **kwargs)`` as a unit; `output` names the keyword argument that is its output
        folder (e.g. ``output="out"`` with ``out=...``)."""
        res = {"num_cpus": num_cpus, "num_gpus": num_gpus}
        if self.returns_files and output is not None:
            self._outputs[key] = str(kwargs[output])
            fn, args = in_scratch, (fn, output, args, kwargs)
        elif kwargs:
            fn, args = call, (fn, args, kwargs)
        self._pending[self.executor.submit(fn, *args, **res)] = (key, fn, args, res)

    def __len__(self) -> int:
        return len(self._pending)

    def completed(self) -> Iterator[tuple[Any, Any, BaseException | None]]:
        """(key, result, None) or (key, None, error) for each unit, in completion order; units submitted
        while iterating are included."""
        while self._pending:
            done, _ = wait(list(self._pending), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                if fut not in self._pending:
                    continue
                key, fn, args, res = self._pending.pop(fut)
                try:
                    result = fut.result()
                    if key in self._outputs:
                        result, files = result
                        write_returned(self._outputs.pop(key), files)
                    yield key, result, None
                except BrokenProcessPool as e:
                    broken = True
                    self._breaks[key] = self._breaks.get(key, 0) + 1
                    if self._breaks[key] > self.retries:
                        yield key, None, RuntimeError(f"a worker process died running it ({e})")
                    else:
                        self._pending[fut] = (key, fn, args, res)  # resubmitted below
                except Exception as e:
                    yield key, None, e
            if broken:
                self._resubmit()

    def _resubmit(self) -> None:
        units = list(self._pending.values())
        self._pending.clear()
        self.executor.renew()
        for key, fn, args, res in units:
            self._pending[self.executor.submit(fn, *args, **res)] = (key, fn, args, res)
