"""CPU speed-ups of training, behind one object (:class:`CpuHelpers`): dropout masks drawn a step
ahead (masks.py) and independent branches on two threads (branches.py). Models stay plain PyTorch."""

from perr.train.cpu.helpers import CpuHelpers

__all__ = ["CpuHelpers"]
