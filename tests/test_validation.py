"""The NaN/inf check of a store split (perr.validation): streamed, and recorded in `<split>/validation.json`
with each file's size and mtime, so an unchanged file is not scanned again and a changed one is."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from perr.store import RowFile
from perr.validation import RACY_NS, VALIDATION_FILE, validate_split
from toydata import make_toy_store

HOUR_NS = 3600 * 10**9


@pytest.fixture
def split(tmp_path):
    return make_toy_store(tmp_path, sizes={"train": 40}) / "train"


def _age(folder, ns: int = HOUR_NS) -> None:
    """Make every file look written `ns` ago (a store packed earlier)."""
    for p in folder.iterdir():
        st = p.stat()
        os.utime(p, ns=(st.st_atime_ns - ns, st.st_mtime_ns - ns))


def _poke_nan(path, row: int, keep_mtime: bool) -> None:
    """Write a NaN into one row in place (same size); optionally put the old mtime back."""
    st = path.stat()
    f = RowFile(path, write=True)
    block = f.read_range(row, row + 1)
    block[0, 1, 0] = np.nan
    f.write(row, block)
    f.close()
    if keep_mtime:
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_result_is_recorded_and_an_unchanged_store_is_not_scanned_again(split):
    _age(split)
    assert validate_split(split) == []
    record = json.loads((split / VALIDATION_FILE).read_text())
    audio = split / "audio.npy"
    st = audio.stat()
    assert record["files"]["audio.npy"] == {"stat": [st.st_size, st.st_mtime_ns], "nonfinite": []}
    assert set(record["files"]) == {
        f"{m}.npy" for m in ("person_a", "person_b", "background", "audio", "text")
    }
    # a NaN slipped in behind the check's back (same size, same mtime): the recorded result is used, so the
    # file was not read again — this is the cost saved on every run, and the documented blind spot
    _poke_nan(audio, 7, keep_mtime=True)
    assert validate_split(split) == []
    # without the record the scan sees it: the NaN is really there
    assert validate_split(split, use_cache=False) == ["row 7 (clip toy-train-7): audio: NaN/inf at 1 step(s)"]


def test_a_changed_file_is_scanned_again(split):
    _age(split)
    assert validate_split(split) == []
    before = json.loads((split / VALIDATION_FILE).read_text())["files"]
    _poke_nan(split / "text.npy", 3, keep_mtime=False)  # a real rewrite: new mtime
    problems = validate_split(split)
    assert problems == ["row 3 (clip toy-train-3): text: NaN/inf at 1 step(s)"]
    _age(split)  # once the change is older than a timestamp tick, its result is recorded too
    assert validate_split(split) == problems
    after = json.loads((split / VALIDATION_FILE).read_text())["files"]
    assert after["text.npy"]["nonfinite"] == [[3, 1]]
    assert after["text.npy"]["stat"] == [
        (split / "text.npy").stat().st_size,
        (split / "text.npy").stat().st_mtime_ns,
    ]
    assert after["text.npy"]["stat"] != before["text.npy"]["stat"]
    assert validate_split(split) == problems  # reported from the record, unchanged


def test_a_file_fresher_than_the_timestamp_tick_is_not_trusted(split):
    """A file written just before its check is not recorded: a change in the same timestamp tick would
    keep size and mtime, so such a file is always scanned again."""
    now = time.time_ns()
    for p in split.iterdir():
        os.utime(p, ns=(now, now))
    assert validate_split(split) == []
    assert (
        not (split / VALIDATION_FILE).exists()
        or "audio.npy" not in json.loads((split / VALIDATION_FILE).read_text())["files"]
    )
    _poke_nan(split / "audio.npy", 5, keep_mtime=True)
    assert validate_split(split) == ["row 5 (clip toy-train-5): audio: NaN/inf at 1 step(s)"]
    assert RACY_NS < 10**9


def test_scan_streams_in_chunks(split, monkeypatch):
    """Chunks smaller than the file find the same rows as one read (chunk boundaries lose nothing)."""
    import perr.validation as validation

    for row in (0, 13, 39):
        _poke_nan(split / "person_a.npy", row, keep_mtime=False)
    expected = [f"row {r} (clip toy-train-{r}): person_a: NaN/inf at 1 step(s)" for r in (0, 13, 39)]
    assert validate_split(split, use_cache=False) == expected
    monkeypatch.setattr(validation, "_CHUNK_BYTES", 1)  # one row per read
    assert validate_split(split, use_cache=False) == expected
