"""Every read and write of a store's arrays: rows of a plain `.npy` file by pread/pwrite (:class:`RowFile`),
or the whole array read into memory once (:meth:`RowFile.load`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from perr.store.header import StoreError

#: chunks `RowFile.load` asks the kernel for ahead of the one it copies
LOAD_AHEAD = 4


class RowFile:
    """Rows of one `.npy` array read and written in place with pread/pwrite, never through a mapping.

    A memory map's touched pages count toward the process's RSS, so streaming a 3.7 GB store through
    one shows 3.7 GB of RSS although the pages are only page cache; plain reads and writes at the rows'
    offsets keep RSS at the size of the rows in flight. The file stays a plain `.npy` that
    `np.load(mmap_mode="r")` reads.
    """

    def __init__(self, path: str | os.PathLike, write: bool = False) -> None:
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR if write else os.O_RDONLY)
        try:
            with open(self.fd, "rb", closefd=False) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
                self.offset = fh.tell()
        except Exception:
            os.close(self.fd)
            raise
        if fortran or not shape:
            os.close(self.fd)
            raise StoreError(f"{self.path}: expected a C-ordered array with rows")
        self.shape: tuple[int, ...] = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.row_shape = self.shape[1:]
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        self.memory: np.ndarray | None = None  # the whole array, once `load` read it in

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.row_bytes

    def load(self, chunk_bytes: int = 64 << 20, on_bytes: Callable[[int], None] | None = None) -> None:
        """Read the whole array into this process's memory, front to back, so later row reads never touch
        the disk: one sequential pass instead of an epoch of scattered reads (a slow or network disk, or
        a page cache that does not keep the store). `on_bytes(n)` reports progress."""
        if self.memory is not None:
            return
        out = np.empty(self.shape, self.dtype)
        flat = memoryview(out.reshape(-1)).cast("B") if out.size else memoryview(b"")
        # the kernel's readahead alone reads a cold file at ~200 MB/s on the benchmark VM; asking for the
        # next chunks while copying this one keeps more reads in flight (730–1,040 MB/s there)
        advise = getattr(os, "posix_fadvise", None)  # not on macOS: plain reads
        if advise is not None:
            advise(self.fd, self.offset, len(flat), os.POSIX_FADV_SEQUENTIAL)
            for lo in range(0, min(len(flat), LOAD_AHEAD * chunk_bytes), chunk_bytes):
                advise(self.fd, self.offset + lo, chunk_bytes, os.POSIX_FADV_WILLNEED)
        for lo in range(0, len(flat), chunk_bytes):
            ahead = lo + LOAD_AHEAD * chunk_bytes
            if advise is not None and ahead < len(flat):
                advise(self.fd, self.offset + ahead, chunk_bytes, os.POSIX_FADV_WILLNEED)
            part = flat[lo : lo + chunk_bytes]
            self._read_into(part, self.offset + lo)
            if on_bytes is not None:
                on_bytes(len(part))
        self.memory = out

    @classmethod
    def create(cls, path: str | os.PathLike, shape: tuple[int, ...], dtype: Any) -> RowFile:
        """A new `.npy` file of `shape` (zeros, sparse until written), open for writing."""
        dtype = np.dtype(dtype)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        with open(path, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            fh.truncate(fh.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)
        return cls(path, write=True)

    def __len__(self) -> int:
        return self.shape[0]

    def write(self, start: int, rows: np.ndarray) -> None:
        buf = memoryview(np.ascontiguousarray(rows, dtype=self.dtype)).cast("B")
        pos = self.offset + start * self.row_bytes
        while len(buf):
            done = os.pwrite(self.fd, buf, pos)
            buf, pos = buf[done:], pos + done

    def read_range(self, start: int, stop: int) -> np.ndarray:
        """Rows start … stop - 1 as a new array."""
        if self.memory is not None:
            return self.memory[start:stop].copy()
        out = np.empty((stop - start, *self.row_shape), self.dtype)
        self._read_into(memoryview(out).cast("B"), self.offset + start * self.row_bytes)
        return out

    def read_rows(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The given rows (any order) into `out` (or a new array); runs of consecutive rows are one read."""
        rows = np.asarray(rows, dtype=np.int64)
        if out is None:
            out = np.empty((len(rows), *self.row_shape), self.dtype)
        if not len(rows):
            return out
        if rows.min() < 0 or rows.max() >= self.shape[0]:
            raise IndexError(f"{self.path}: rows outside 0 … {self.shape[0] - 1}")
        if self.memory is not None:
            return np.take(self.memory, rows, axis=0, out=out)
        flat = memoryview(out.reshape(len(rows), -1)).cast("B")
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for lo, hi in zip([0, *breaks.tolist()], [*breaks.tolist(), len(rows)], strict=True):
            self._read_into(
                flat[lo * self.row_bytes : hi * self.row_bytes], self.offset + int(rows[lo]) * self.row_bytes
            )
        return out

    def _read_into(self, buf: memoryview, pos: int) -> None:
        while len(buf):
            got = os.preadv(self.fd, [buf], pos)
            if got <= 0:
                raise StoreError(f"{self.path}: file ends early (truncated?)")
            buf, pos = buf[got:], pos + got

    def sync(self) -> None:
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        with contextlib.suppress(OSError, AttributeError):
            self.close()
