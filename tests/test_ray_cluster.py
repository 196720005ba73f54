"""A real two-node Ray cluster (issue 14): a head and a worker node started by this test as separate
`ray start --block` processes on 127.0.0.1, each in its own session, token auth on, temp files inside the
test folder. A build, a feature extraction and a two-run benchmark go through `--address`; in each, the
worker node takes itself down — SIGKILL to its whole process group (raylet, workers, the tasks in
flight) — right after its first unit of work is durable (PERR_KILL_NODE_AT, set in that node's
environment only: a deterministic point instead of a timing race). The lost tasks run again on the head,
and the outputs equal a local run's: no file missing, none extra, the same bytes/arrays/results.csv.
The test stops only the processes it started, by their process groups.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import FEATURES_EXTRA, RAY_EXTRA, VIDEO_EXTRA, episode, shared_file, tool

pytest.importorskip(*RAY_EXTRA)
pytest.importorskip(*VIDEO_EXTRA)
pytest.importorskip(*FEATURES_EXTRA)

from perr.features.files import read_clip_file
from perr.manifest import Clip, SubtitleEvent, write_manifest

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.video]

PERR = [sys.executable, "-m", "perr"]
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Head + worker nodes as `ray start --block` processes of this test (each its own process group)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        token = root / "auth_token"
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_TMPDIR": str(root / "t"),
            # notice a lost node within seconds (defaults: ~30 s)
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
        }
        self.nodes: list[subprocess.Popen] = []

    def _start(self, args: list[str], name: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.root / f"{name}.log"
        proc = subprocess.Popen(
            [RAY, "start", *args, "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"],
            env={**self.env, **(extra_env or {})},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the node's raylet and workers go with it
        )
        self.nodes.append(proc)
        deadline = time.monotonic() + 120
        while "block forever" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start ({name}) did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        return proc

    def start_head(self) -> None:
        self._start(
            ["--head", "--port", str(self.port), "--num-cpus", "1", "--temp-dir", str(self.root / "t"),
             "--include-dashboard=false"],
            "head",
        )  # fmt: skip

    def start_worker(self, kill_at: str) -> subprocess.Popen:
        """A one-CPU worker node that takes itself down at `kill_at` (PERR_KILL_NODE_AT)."""
        return self._start(
            ["--address", self.address, "--num-cpus", "1"],
            f"worker-{kill_at}",
            {"PERR_KILL_NODE_AT": kill_at},
        )

    def perr(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*PERR, *args, "--backend", "ray", "--address", self.address],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def stop(self) -> None:
        for proc in reversed(self.nodes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.nodes:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def cluster():
    tool("ffmpeg")
    # Ray's socket paths (<root>/t/session_<date>_<pid>/sockets/plasma_store.N) must fit in 107 bytes,
    # which pytest's temp folders (deeper still under pytest-xdist) do not
    root = Path(tempfile.mkdtemp(prefix="perr-rc-", dir="/tmp"))
    c = Cluster(root)
    try:
        c.start_head()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def _worker_was_lost(worker: subprocess.Popen) -> None:
    worker.wait(timeout=60)
    assert worker.returncode == -signal.SIGKILL, "the worker node took itself down mid-run"


def _files(out: Path, skip: set[str]) -> dict[str, Path]:
    return {
        str(p.relative_to(out)): p
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.relative_to(out).parts[0] not in skip
    }


def test_build_survives_a_lost_node(cluster: Cluster, tmp_path: Path) -> None:
    video = episode(1.0)
    worker = cluster.start_worker("build.chunk:1")
    ray_out, local_out = tmp_path / "ray", tmp_path / "local"
    res = cluster.perr(
        "build", "run", str(video), "--out", str(ray_out), "--chunk-seconds", "15", "--no-progress"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    _worker_was_lost(worker)
    local = subprocess.run(
        [*PERR, "build", "run", str(video), "--out", str(local_out), "--chunk-seconds", "15", "--jobs", "1",
         "--no-progress"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]
    skip = {"done", "ray", ".partial", "failures.json"}
    got, want = _files(ray_out, skip), _files(local_out, skip)
    assert sorted(got) == sorted(want) and any(k.startswith("clips/") for k in want)
    for name, path in want.items():
        if name.endswith(".npz"):
            with np.load(path) as a, np.load(got[name]) as b:
                assert sorted(a.files) == sorted(b.files)
                for k in a.files:
                    np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}#{k}")
        else:
            assert path.read_bytes() == got[name].read_bytes(), name
    done = json.loads((ray_out / "done" / f"{video.stem}.json").read_text())
    assert done["counts"]["chunks"] >= 4


def test_extraction_survives_a_lost_node(cluster: Cluster, tmp_path: Path) -> None:
    videos = [
        shared_file("video/opencv/Megamind.avi"),
        shared_file("video/face_recognition/short_hamilton_clip.mp4"),
    ]
    clips = [  # two videos: two units of work, one for each node
        Clip(
            clip_id=f"v{v}seg{i}",
            video=str(video),
            start=i * 1.5,
            end=i * 1.5 + 3.0,
            subtitles=[SubtitleEvent(start=i * 1.5 + 1.0, end=i * 1.5 + 2.0, text=f"line {i}")],
        )
        for v, video in enumerate(videos)
        for i in range(4)
    ]
    manifest = tmp_path / "segments.jsonl"
    write_manifest(manifest, clips)
    light = ["--T", "4", "--modalities", "background,text", "--threads", "1"]
    worker = cluster.start_worker("features.clip:1")
    res = cluster.perr("features", "extract", str(manifest), "--out", str(tmp_path / "ray"), *light)
    assert res.returncode == 0, res.stderr[-3000:]
    _worker_was_lost(worker)
    local = subprocess.run(
        [*PERR, "features", "extract", str(manifest), "--out", str(tmp_path / "local"), *light, "--jobs", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]
    got = _files(tmp_path / "ray", {"ray"})
    want = _files(tmp_path / "local", {"ray"})
    assert sorted(got) == sorted(want) and len([k for k in want if k.startswith("clips/")]) == 8
    for name in (k for k in want if k.endswith(".npz")):
        x, m, _ = read_clip_file(got[name])
        rx, rm, _ = read_clip_file(want[name])
        for k in rx:
            np.testing.assert_array_equal(m[k], rm[k], err_msg=f"{name}:{k}")
            np.testing.assert_array_equal(x[k], rx[k], err_msg=f"{name}:{k}")


def test_benchmark_survives_a_lost_node(cluster: Cluster, tmp_path: Path) -> None:
    from perr.data.synth import SynthConfig, write_synthetic

    store = write_synthetic(tmp_path / "data", SynthConfig(n=100, seed=3)).store
    args = [
        "--dataset",
        str(store),
        "--models",
        "lstm",
        "--tasks",
        "5",
        "--seeds",
        "0,1",
        "--set",
        "epochs=3",
    ]
    worker = cluster.start_worker("train.epoch:1")
    res = cluster.perr("benchmark", "--out", str(tmp_path / "ray"), *args)
    assert res.returncode == 0, res.stderr[-3000:]
    _worker_was_lost(worker)
    local = subprocess.run(
        [*PERR, "benchmark", "--out", str(tmp_path / "local"), *args, "--backend", "local", "--jobs", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-3000:]
    assert (tmp_path / "ray" / "results.csv").read_text() == (tmp_path / "local" / "results.csv").read_text()
    for seed in (0, 1):

        def epochs(root: Path, seed: int = seed) -> list[int]:
            history = root / "runs" / "lstm" / "task-5" / "all" / f"seed-{seed}" / "history.jsonl"
            return [json.loads(line)["epoch"] for line in history.read_text().splitlines()]

        # The run that lost its node resumed from its epoch checkpoint: no epoch lost or repeated.
        assert epochs(tmp_path / "ray") == epochs(tmp_path / "local") == [0, 1, 2]
