"""Dropout masks drawn one training step ahead by a helper thread, off the step's critical path (CPU).

On CPU, torch draws a dropout mask with a serial per-element Bernoulli from the default generator: about
10 ns an element, 23 ms of a paper-sized step (d 256) and 10 ms at d 64, while the model's own kernels
wait. `F.dropout` on a CPU tensor computes `noise = empty_like(x).bernoulli_(1 - p).div_(1 - p)` and
returns `x * noise`. A :class:`MaskPlan` draws the same noise tensors in the same order from the same
generator in a helper thread, one step ahead, and :meth:`MaskPlan.dropout` multiplies by them: masks,
outputs, gradients and the generator's state are exactly those of `F.dropout`. The plan learns a step's
draws (shape, strides, dtype, p) from the first step of each batch size, drawn in place (its *tape*), and
proves that they are all the step draws: replaying them on a copy of the generator from the step's
starting state must give its final state, else the plan turns itself off. The model's `nn.Dropout`
modules reach the plan through perr.train.cpu.CpuHelpers, which routes them here during training steps.

Where torch's threads fill every core (the paper's d 256 on 2 cores), the helper runs `background`: on
Linux's SCHED_IDLE (perr.machine.lower_this_thread), so it draws in the moments the thread pool leaves a
core idle (its barriers, the step's single-threaded Python) instead of preempting it. If other processes
keep the cores busy and the step waits on a starved helper, the step retires the helper for the rest of
the epoch (restoring its priority where the OS allows, so the tape it is drawing ends soon) and draws in
place: the masks are the same either way, only the time differs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from perr.machine import lower_this_thread, restore_thread

#: a step that waits this long for a background helper's masks counts it as starved (a paper-sized
#: step's masks take ~25-40 ms to draw on a free core)
STARVED_S = 0.25
_RETIRED = object()  # the helper's last item when retired: it drew nothing more


@dataclass(frozen=True)
class Draw:
    """One mask as `F.dropout` makes it: `empty_like(x)` (shape, strides, dtype), then bernoulli(1 - p)."""

    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    p: float

    def make(self, generator: torch.Generator | None = None) -> Tensor:
        noise = torch.empty_strided(self.shape, self.stride, dtype=self.dtype)
        return noise.bernoulli_(1 - self.p, generator=generator).div_(1 - self.p)


class MaskPlan:
    """Draws each training step's dropout masks one step ahead in a helper thread (see the module doc).

    Use: `with plan.epoch(batch_sizes):` around an epoch and `with plan.step(batch_size):` around each
    step's forward and backward. A step whose batch size has no learnt tape yet draws in place (and
    learns it); the helper then draws ahead for the following steps, stopping before any step it cannot
    foresee, so the generator is always used in the order of an ordinary run. `background`: the helper
    runs at idle priority (see the module doc), for when torch's threads leave no core spare.
    """

    def __init__(self, background: bool = False) -> None:
        self.tapes: dict[int, tuple[Draw, ...]] = {}
        self.enabled = True
        self.background = background
        self.steps_ahead = 0  # steps whose masks were drawn ahead (for profiles and tests)
        self.starved = 0  # steps that found a background helper starved (for profiles and tests)
        self.retired = 0  # epochs in which a starved helper was retired
        self._retire = threading.Event()
        self._inline_rest = False  # the helper was retired: the epoch's remaining steps draw in place
        self._helper_id: int | None = None  # native id of a background helper that lowered itself
        self._sizes: list[int] = []
        self._index = 0  # the epoch's current step
        self._ahead_end = 0  # steps before this one have their masks drawn (or being drawn) by the helper
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._mode = "off"  # off | record | replay
        self._masks: list[Tensor] = []
        self._draws: list[Draw] = []
        self._taken = 0

    @contextlib.contextmanager
    def epoch(self, batch_sizes: Sequence[int]) -> Iterator[None]:
        self._sizes, self._index, self._ahead_end = list(batch_sizes), 0, 0
        self._inline_rest = False
        self._draw_ahead()
        try:
            yield
        finally:
            self._stop_helper()

    def _draw_ahead(self) -> None:
        """Start the helper on the run of steps from the current one whose tapes are known."""
        run: list[tuple[Draw, ...]] = []
        for b in self._sizes[self._index :] if not self._inline_rest else []:
            if not self.enabled or b not in self.tapes:
                break
            run.append(self.tapes[b])
        self._ahead_end = self._index + len(run)
        if not run:
            return
        self._queue, self._stop = queue.Queue(maxsize=2), threading.Event()  # one step ahead at most
        self._retire, self._helper_id = threading.Event(), None
        q, stop, retire = self._queue, self._stop, self._retire

        def work() -> None:
            try:
                if self.background:
                    self._helper_id = lower_this_thread()
                for tape in run:
                    if retire.is_set():  # everything drawn so far is queued, in order; nothing more
                        q.put(_RETIRED)
                        return
                    masks = [d.make() for d in tape]
                    while not stop.is_set():
                        with contextlib.suppress(queue.Full):
                            q.put(masks, timeout=0.1)
                            break
                    if stop.is_set():
                        return
            except BaseException as e:  # raised in the step that needed the masks
                q.put(e)

        self._thread = threading.Thread(target=work, name="perr-dropout-masks", daemon=True)
        self._thread.start()

    def _stop_helper(self) -> None:
        if self._thread is not None:
            self._stop.set()
            while self._thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    self._queue.get(timeout=0.1)
            self._thread.join()
        self._thread = None

    @contextlib.contextmanager
    def step(self, batch_size: int) -> Iterator[None]:
        before = None
        item = self._next_masks() if self._index < self._ahead_end else None
        if item is not None:
            self._mode, self._masks, self._draws = "replay", item, list(self.tapes[batch_size])
            self.steps_ahead += 1
        elif self.enabled and batch_size not in self.tapes:
            self._mode, self._draws = "record", []
            before = torch.get_rng_state()
        else:  # no plan, or a retired helper: F.dropout's own draws, in the same order
            self._mode = "off"
        if self._sizes and self._index < len(self._sizes) and batch_size != self._sizes[self._index]:
            raise RuntimeError(
                f"dropout plan: step {self._index} has {batch_size} clips, expected {self._sizes[self._index]}"
            )
        self._taken = 0
        try:
            yield
        finally:
            active, self._mode = self._mode, "off"
        if active == "replay" and self._taken != len(self._draws):
            raise RuntimeError(f"dropout plan: the step took {self._taken} of its {len(self._draws)} masks")
        if before is not None:
            self._learn(batch_size, before)
        self._index += 1
        if self._index >= self._ahead_end and self._index < len(self._sizes):
            self._stop_helper()  # its run is used up; everything it drew has been taken
            self._draw_ahead()

    def _next_masks(self) -> list[Tensor] | None:
        """The helper's masks for this step; None once it has retired (the step then draws in place).
        A background helper that keeps the step waiting is starved: it is asked to retire after what it
        has already drawn."""
        try:
            item = self._queue.get(timeout=STARVED_S) if self.background else self._queue.get()
        except queue.Empty:
            self.starved += 1
            self._retire.set()  # other work has the cores: drawing in place is as fast, and never stalls
            if self._helper_id is not None:
                restore_thread(self._helper_id)  # so the tape it is drawing ends soon (where allowed)
            self._helper_id = None
            item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        if item is _RETIRED:
            self._ahead_end, self._inline_rest = self._index, True
            self.retired += 1
            return None
        return item

    def _learn(self, batch_size: int, before: Tensor) -> None:
        """Keep the step's draws as its batch size's tape if they are all it drew from the generator."""
        replay = torch.Generator()
        replay.set_state(before)
        for d in self._draws:
            d.make(replay)
        if torch.equal(replay.get_state(), torch.get_rng_state()):
            self.tapes[batch_size] = tuple(self._draws)
        else:  # the model draws random numbers elsewhere too: drawing ahead would reorder them
            self.enabled = False

    def dropout(self, x: Tensor, p: float) -> Tensor:
        """`F.dropout(x, p, training=True)`; inside a step of the plan, with the step's planned mask."""
        if self._mode == "off" or not 0 < p < 1 or x.device.type != "cpu" or x.numel() == 0:
            return F.dropout(x, p, True)
        return x * self.take(x, p)

    def take(self, x: Tensor, p: float) -> Tensor:
        """The next noise tensor of this step (drawn ahead, or drawn now exactly as F.dropout would)."""
        want = Draw(tuple(x.shape), tuple(torch.empty_like(x).stride()), x.dtype, float(p))
        if self._mode == "replay":
            if self._taken >= len(self._draws) or self._draws[self._taken] != want:
                raise RuntimeError(f"dropout plan: unexpected draw {want} as mask {self._taken} of the step")
            noise = self._masks[self._taken]
        else:
            noise = want.make()
            if self._mode == "record":
                self._draws.append(want)
        self._taken += 1
        return noise
