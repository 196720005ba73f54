"""Shared fixtures and helpers. Real data lives in ../shared/data (beside the repository); tests that
need it skip with a clear reason when it is absent (a user's fresh clone). Tests that need an optional
extra (video, features, ray) or a system tool (ffmpeg, espeak-ng, chromium) skip naming what is missing,
so a core-only install runs the rest.

Markers (pyproject, strict): ``video`` — decodes real video or renders fixtures with ffmpeg;
``services`` — starts a real external service (Label Studio, Ray, Chromium); ``slow`` — an end-to-end
run of more than ~15 s on 2 cores.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PERR_SHARED_DATA", REPO.parent / "shared" / "data"))

#: Optional extras, as arguments of pytest.importorskip: `pytest.importorskip(*VIDEO_EXTRA)` at the top of a
#: test module skips it (naming the extra to install) on an install without that extra.
VIDEO_EXTRA = ("mediapipe", None, "needs the video extra: pip install -e '.[video]'")
FEATURES_EXTRA = ("efficientnet_lite_pytorch", None, "needs the features extra: pip install -e '.[features]'")
RAY_EXTRA = ("ray", None, "needs the ray extra: pip install -e '.[ray]'")


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


def tool(name: str) -> str:
    """The path of a system tool, or skip naming the package that provides it (`make system` installs it)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (make system installs it)")
    return path


def run_or_dump(
    cmd: Sequence[str], timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(cmd, capture_output=True, text=True)` for a Python command that may hang: at the
    timeout the process gets SIGABRT with faulthandler on, so the test fails with every thread's stack
    (where it hung) instead of subprocess's bare TimeoutExpired."""
    env = {**(env if env is not None else os.environ), "PYTHONFAULTHANDLER": "1"}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            pytest.fail(
                f"{' '.join(map(str, cmd))} still ran after {timeout:g} s; its stacks:\n{err[-6000:]}"
            )
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def ffmpeg(*args: str, cwd: Path | None = None) -> None:
    """Run ffmpeg quietly, overwriting outputs; skips the test when ffmpeg is absent."""
    subprocess.run(
        [tool("ffmpeg"), "-nostdin", "-v", "error", "-y", *args],
        check=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def speech_wav(text: str, out: Path) -> Path:
    """Synthetic speech (espeak-ng) with a known script: ground truth for audio and OCR tests."""
    subprocess.run([tool("espeak-ng"), "-w", str(out), text], check=True)
    return out


def episode(minutes: float) -> Path:
    """A generated episode of the real clips (benchmarks/episode.py), cached under runs/episodes/; skips
    when ffmpeg or ../shared/data is missing."""
    import importlib.util

    tool("ffmpeg")
    if not (SHARED_DATA / "video").is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA / 'video'}")
    spec = importlib.util.spec_from_file_location("episode", REPO / "benchmarks" / "episode.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = REPO / "runs" / "episodes"
    folder.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers may ask for the same episode at once: one makes it, the other waits and reuses it.
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return module.make_episode(minutes, 720, folder / f"episode-{minutes:g}min-720p.mp4")


#: matplotlib's default colour cycle (C0, C1, …): what the figures draw their series in.
MPL_CYCLE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def png_pixels(path: Path) -> object:
    """The RGB pixels of a PNG (numpy [H, W, 3] uint8), read with matplotlib's own decoder."""
    import matplotlib.image
    import numpy as np

    img = matplotlib.image.imread(path)
    return (np.asarray(img)[..., :3] * 255).round().astype(np.uint8)


def colour_share(pixels: object, rgb: tuple[int, int, int], tol: int = 6) -> float:
    """The share of pixels within `tol` of a colour: how much of a plotted series is on the figure."""
    import numpy as np

    diff = np.abs(np.asarray(pixels, dtype=np.int16) - np.asarray(rgb, dtype=np.int16)).max(axis=-1)
    return float((diff <= tol).mean())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With PERR_NO_SKIPS=1 (set by `make test`, which installs every extra and tool), a test skipped for a
    missing extra or tool fails the run: such a skip would hide a broken install. Skips for missing real
    data (../shared absent, as in a user's fresh clone) stay skips."""
    if os.environ.get("PERR_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    bad = []
    for rep in reporter.stats.get("skipped", []) if reporter is not None else []:
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        if "real data not available" not in reason:
            bad.append((rep.nodeid, reason))
    for nodeid, reason in bad:
        reporter.write_line(f"PERR_NO_SKIPS: {nodeid} was skipped: {reason}", red=True)
    if bad:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
