"""Independent branches of a model run on two threads, forward and backward (CPU).

A module declares independent branches with a `map_branches` argument of its forward (the stage-2 LSTMs:
perr.models.recurrent.ModalityLSTMs). Each LSTM is one fused oneDNN kernel that releases the GIL, so a
helper thread can run some of them while the step's thread runs the rest. :class:`BranchPool` is that
helper; :meth:`BranchPool.map_branches` is what perr.train.cpu.CpuHelpers passes as `map_branches`.
When the caller uses several intra-op threads, `BranchPool.map` splits them while the branches run:
each of the two threads gets half (`branch_threads`), so the branches never oversubscribe the cores.
Autograd would run their backward kernels one after another on the step's thread, so
:class:`ParallelBranches` is an autograd Function: its forward records each branch's graph separately,
and its backward differentiates the branches on both threads (`torch.autograd.grad`, which runs a CPU
graph on the thread that calls it).

Branches must not draw random numbers (the stage-2 LSTMs have no dropout): the order of draws from the
shared generator would then depend on the threads' timing. One caller thread uses a pool at a time.

Every kernel is the one the serial code runs, on the same inputs, so outputs and gradients are bit-equal
(tests/test_branches.py compares them). With the caller on 2 threads and the branches on 1 each, that
also needs oneDNN's LSTM to give the same sums on 1 and 2 threads: it does on the AMD EPYC Zen 4 these
runs use (B 16, T 32, input and hidden 64 to 256), and the test pins it. Under bf16 autocast
(`--set bf16=true`) the helper thread takes the caller's autocast state, and the same holds for the bf16
kernels.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def branch_threads(caller: int) -> int:
    """Intra-op threads for each of the two branch threads when the caller runs `caller`: half each, so
    the two together use the caller's cores (one each on 2 cores; one each too when the caller has one,
    as a spare core then holds the helper)."""
    return max(1, caller // 2)


class BranchPool:
    """One helper thread that runs the first jobs of each `map` while the caller runs the rest."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None  # started by the first map
        self.maps = 0  # calls of map (forward and backward passes run on two threads), for tests and profiles

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, items, grad, threads, autocast = job
            try:
                if torch.get_num_threads() != threads:  # the caller's share, not OpenMP's per-thread default
                    torch.set_num_threads(threads)
                with (
                    torch.set_grad_enabled(grad),
                    torch.autocast("cpu", dtype=autocast, enabled=autocast is not None),
                ):
                    self._done.put([fn(i) for i in items])
            except BaseException as e:  # handed to the caller and raised there
                self._done.put(e)

    def map(self, fn: Callable[[int], Any], n: int) -> list[Any]:
        """[fn(0), …, fn(n-1)]: the helper takes the first n // 2, the caller the rest (the caller's own
        work between steps makes it the busier thread). Grad mode and CPU autocast (on or off, and its
        dtype) are the caller's on both threads: both are per-thread state."""
        split = n // 2
        self.maps += 1
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="perr-branches", daemon=True)
            self._thread.start()
        caller = torch.get_num_threads()
        share = branch_threads(caller)
        autocast = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        self._jobs.put((fn, range(split), torch.is_grad_enabled(), share, autocast))
        if share != caller:
            torch.set_num_threads(share)
        try:
            mine = [fn(i) for i in range(split, n)]
        finally:
            theirs = self._done.get()  # always collected, so the next map never reads a stale result
            if share != caller:
                torch.set_num_threads(caller)
        if isinstance(theirs, BaseException):
            raise theirs
        return [*theirs, *mine]

    def map_branches(
        self,
        fn: Callable[[nn.Module, Tensor], Tensor],
        modules: Sequence[nn.Module],
        inputs: Sequence[Tensor],
    ) -> list[Tensor]:
        """A module's `map_branches` (perr.models.recurrent.BranchMap) on this pool's two threads, on CPU
        tensors; elsewhere one after another (a GPU runs its kernels asynchronously anyway)."""
        if not inputs or inputs[0].device.type != "cpu":
            return [fn(m, x) for m, x in zip(modules, inputs, strict=True)]
        return run_branches(self, modules, fn, inputs)

    def close(self) -> None:
        """Stop the helper thread (if it ever started); a later map starts a new one."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


def run_branches(
    pool: BranchPool,
    modules: Sequence[nn.Module],
    fn: Callable[[nn.Module, Tensor], Tensor],
    inputs: Sequence[Tensor],
) -> list[Tensor]:
    """[fn(modules[i], inputs[i])] for every i on the pool's two threads, differentiable."""
    if not torch.is_grad_enabled():
        return pool.map(lambda i: fn(modules[i], inputs[i]), len(modules))
    params = [[p for p in m.parameters() if p.requires_grad] for m in modules]
    flat = [p for ps in params for p in ps]
    return list(ParallelBranches.apply(pool, modules, fn, params, len(inputs), *inputs, *flat))


class ParallelBranches(torch.autograd.Function):
    """Forward: each branch's own graph, built on the pool's threads. Backward: each branch's
    `torch.autograd.grad`, on the pool's threads; the parameter gradients flow back as this Function's."""

    @staticmethod
    def forward(
        ctx: Any,
        pool: BranchPool,
        modules: Sequence[nn.Module],
        fn: Callable,
        params: list,
        n: int,
        *tensors: Tensor,
    ) -> tuple[Tensor, ...]:
        leaves = [x.detach().requires_grad_(x.requires_grad) for x in tensors[:n]]

        def branch(i: int) -> Tensor:
            with torch.enable_grad():
                return fn(modules[i], leaves[i])

        outs = pool.map(branch, n)
        ctx.pool, ctx.leaves, ctx.outs, ctx.params = pool, leaves, outs, params
        return tuple(o.detach() for o in outs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: Tensor) -> tuple[Tensor | None, ...]:
        leaves, outs, params = ctx.leaves, ctx.outs, ctx.params

        def branch(i: int) -> tuple[Tensor | None, ...]:
            wrt = ([leaves[i]] if leaves[i].requires_grad else []) + params[i]
            if not wrt or not outs[i].requires_grad:
                return (None,) * (1 + len(params[i]))
            got = torch.autograd.grad(outs[i], wrt, grads[i], allow_unused=True)
            return got if leaves[i].requires_grad else (None, *got)

        per = ctx.pool.map(branch, len(outs))
        ctx.leaves = ctx.outs = None  # the branch graphs are freed by autograd.grad; drop the references
        grad_x = [g[0] for g in per]
        grad_p = [gp for g in per for gp in g[1:]]
        return (None, None, None, None, None, *grad_x, *grad_p)
