"""perr.train.cpu.branches: independent branches (the stage-2 LSTMs) on two threads, forward and backward,
bit-equal to running them one after another."""

from __future__ import annotations

import threading

import pytest
import torch

from perr.models.recurrent import ModalityLSTMs
from perr.train.cpu.branches import BranchPool, branch_threads


@pytest.fixture
def pool():
    p = BranchPool()
    yield p
    p.close()


def _lstms_and_inputs(m: int = 5):
    torch.manual_seed(0)
    lstms = ModalityLSTMs(m, 12, 8)
    xs = [torch.randn(3, 7, 12, requires_grad=True) for _ in range(m)]
    return lstms, xs


def _forward_backward(lstms, xs, pool, bf16: bool = False):
    for x in xs:
        x.grad = None
    lstms.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = lstms(xs) if pool is None else lstms(xs, map_branches=pool.map_branches)
    weights = torch.arange(out.numel(), dtype=out.dtype).view_as(out)  # a different gradient per output
    (out * weights).sum().backward()
    return [out.detach(), *(p.grad for p in lstms.parameters()), *(x.grad for x in xs)]


@pytest.fixture
def caller_threads(request):
    """Run the test with torch at `request.param` intra-op threads, and put the count back after."""
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize("caller_threads", [1, 2], indirect=True)
@pytest.mark.parametrize("m", [1, 2, 5])
@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16-autocast"])
def test_two_threads_give_the_serial_outputs_and_gradients(pool, m, caller_threads, bf16):
    """Also when the caller runs 2 intra-op threads and the branches 1 each (the paper-sized model's
    set-up), against the serial kernels at 2 threads; and under bf16 autocast (`--set bf16=true`), which
    the helper thread takes over from the caller."""
    lstms, xs = _lstms_and_inputs(m)
    serial = _forward_backward(lstms, xs, None, bf16)
    parallel = _forward_backward(lstms, xs, pool, bf16)
    if bf16:
        assert serial[0].dtype == torch.bfloat16  # the LSTMs really ran under autocast
    assert torch.get_num_threads() == caller_threads  # put back after each map
    assert len(serial) == len(parallel)
    for a, b in zip(serial, parallel, strict=True):
        assert a is not None and torch.equal(a, b)
    assert pool.maps == (2 if m > 0 else 0)  # one forward, one backward map


def test_helper_thread_really_runs_branches(pool):
    """The first half of the branches runs on the pool's thread, the rest on the caller's."""
    seen: list[str] = []
    out = pool.map(lambda i: seen.append(threading.current_thread().name) or i * i, 4)
    assert out == [0, 1, 4, 9]
    assert seen.count("perr-branches") == 2 and threading.current_thread().name in seen


@pytest.mark.parametrize(("caller_threads", "share"), [(1, 1), (2, 1), (4, 2)], indirect=["caller_threads"])
def test_each_branch_thread_gets_half_the_callers_threads(pool, caller_threads, share):
    """While the branches run, the caller and the helper each run `branch_threads(caller)` intra-op
    threads, so the two together use the caller's cores; after the map the caller has its own back."""
    assert branch_threads(caller_threads) == share
    seen = pool.map(lambda i: (threading.current_thread().name, torch.get_num_threads()), 2)
    assert sorted(seen) == sorted([("perr-branches", share), (threading.current_thread().name, share)])
    assert torch.get_num_threads() == caller_threads


def test_no_grad_forward_uses_the_pool_and_builds_no_graph(pool):
    lstms, xs = _lstms_and_inputs()
    with torch.no_grad():
        serial = lstms(xs)
        parallel = lstms(xs, map_branches=pool.map_branches)
    assert torch.equal(serial, parallel) and not parallel.requires_grad and pool.maps == 1


def test_frozen_branch_and_inputs_without_grad(pool):
    """A branch whose parameters are frozen gets no gradient; inputs that need none get none."""
    lstms, xs = _lstms_and_inputs(3)
    for p in lstms.lstms[1].parameters():
        p.requires_grad_(False)
    xs = [x.detach() for x in xs]
    lstms(xs, map_branches=pool.map_branches).sum().backward()
    assert all(p.grad is None for p in lstms.lstms[1].parameters())
    assert all(p.grad is not None for k in (0, 2) for p in lstms.lstms[k].parameters())
    assert all(x.grad is None for x in xs)


def test_an_error_on_the_helper_reaches_the_caller_and_the_pool_keeps_working(pool):
    def fail_first(i: int) -> int:
        if i == 0:
            raise RuntimeError("branch 0 broke")
        return i

    with pytest.raises(RuntimeError, match="branch 0 broke"):
        pool.map(fail_first, 2)
    assert pool.map(lambda i: i + 1, 3) == [1, 2, 3]


def test_branches_stay_serial_off_the_cpu(pool):
    """A GPU runs its kernels asynchronously anyway: there the pool is not used."""
    lstms = ModalityLSTMs(2, 3, 4).to("meta")
    out = lstms([torch.zeros(2, 5, 3, device="meta")] * 2, map_branches=pool.map_branches)
    assert out.shape == (2, 2, 4) and pool.maps == 0


def test_the_helper_runs_under_the_callers_autocast(pool):
    """Autocast is per-thread state: the helper takes the caller's (on, dtype) for each map, and none
    when the caller has none."""

    def state(_: int) -> tuple[bool, torch.dtype]:
        return torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")

    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert pool.map(state, 2) == [(True, torch.bfloat16)] * 2
    assert [on for on, _ in pool.map(state, 2)] == [False, False]


def test_close_stops_the_thread_and_a_later_map_restarts_it():
    pool = BranchPool()
    assert pool.map(lambda i: i, 2) == [0, 1]
    pool.close()
    assert not any(t.name == "perr-branches" and t.is_alive() for t in threading.enumerate())
    assert pool.map(lambda i: -i, 2) == [0, -1]
    pool.close()
