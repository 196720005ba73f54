"""Shared fixtures. Real data lives in ../shared/data (beside the repository); tests that need it skip
with a clear reason when it is absent (a user's fresh clone)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PERR_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(rel: str) -> Path:
    """Path to a real file under ../shared/data, or skip the test naming what is missing."""
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(
            f"real data not available: {p} (clone with ../shared beside the repo, or set PERR_SHARED_DATA)"
        )
    return p


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder not available: {SHARED_DATA}")
    return SHARED_DATA
