"""Start and stop a real Label Studio server for tests (see ../shared/SERVICES.md).

Label Studio lives in its own virtual environment `.venv-ls` (made by `make test`), because it pins
Django and many packages; perr's venv never imports it. The server binds 127.0.0.1 on a free port,
keeps all state in a temp folder, never calls home, and is stopped by its own process id.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LS_VENV = Path(os.environ.get("PERR_LS_VENV", REPO / ".venv-ls"))
LS_BIN = LS_VENV / "bin" / "label-studio"
LS_PYTHON = LS_VENV / "bin" / "python"
DRIVER = Path(__file__).with_name("ls_driver.py")


def require_label_studio() -> None:
    """Skip (with the reason and the fix) when the Label Studio venv is absent."""
    if not LS_BIN.exists():
        pytest.skip(
            f"Label Studio not installed at {LS_VENV} (run `make test` or `make ls-venv` to create it)"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabelStudio:
    url: str
    token: str
    username: str
    password: str
    proc: subprocess.Popen
    log: Path

    def get(self, path: str) -> bytes:
        """An authenticated GET (legacy token), e.g. to fetch a served media file."""
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"Token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.read()

    def drive(self, *args: str | os.PathLike, timeout: float = 120) -> dict:
        """Run tests/ls_driver.py with the Label Studio venv's python (it has label-studio-sdk 2.x)."""
        cmd = [str(LS_PYTHON), str(DRIVER), "--url", self.url, "--token", self.token, *map(str, args)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if res.returncode != 0:
            raise AssertionError(f"driver failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-4000:]}")
        return json.loads(res.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        """Stop the server's own process group (started with a new session), then reap it."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_label_studio(run_dir: Path, document_root: Path, timeout: float = 300) -> LabelStudio:
    """Start Label Studio with a preset admin and legacy token; return once GET /health says UP."""
    require_label_studio()
    port = free_port()
    token = secrets.token_hex(20)  # 40 characters
    username = "annotator1@perr.test"
    password = secrets.token_urlsafe(12)
    data = run_dir / "ls-data"
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_USERNAME": username,
        "LABEL_STUDIO_PASSWORD": password,
        "LABEL_STUDIO_USER_TOKEN": token,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
        "HOME": str(run_dir),  # nothing lands in the user's home
    }
    log = run_dir / "label-studio.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [str(LS_BIN), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
            env=env,
            cwd=run_dir,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ls = LabelStudio(f"http://127.0.0.1:{port}", token, username, password, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Label Studio exited with {proc.returncode}; log:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(ls.url + "/health", timeout=2) as r:
                if b"UP" in r.read():
                    return ls
        except OSError:
            pass
        time.sleep(0.5)
    ls.stop()
    raise RuntimeError(f"Label Studio not ready after {timeout} s; log:\n{log.read_text()[-4000:]}")
