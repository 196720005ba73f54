"""The benchmarks' shared harness (benchmarks/harness.py): result header, atomic result files,
alternating rounds, grids and perr benchmark's run-folder layout; and make_docs' generated files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import alternate, grid, header, run_dir, seed_runs, write_result

from perr.benchmark import run_dir as benchmark_run_dir

REPO = Path(__file__).resolve().parents[1]


def test_header_then_payload_in_one_atomic_file(tmp_path: Path) -> None:
    head = header("unit", packages=["pytest"])
    for key in ("benchmark", "date", "git_commit", "cores", "cpu", "versions", "loadavg"):
        assert key in head, key
    assert {"python", "torch", "numpy", "perr", "pytest"} <= set(head["versions"])
    out = tmp_path / "r" / "x.json"
    write_result(out, {"ms": 1.5}, head)
    got = json.loads(out.read_text())
    assert list(got)[: len(head)] == list(head) and got["ms"] == 1.5
    assert [p.name for p in out.parent.iterdir()] == ["x.json"]  # no temp file left behind


def test_alternate_reverses_the_order_every_other_round() -> None:
    calls: list[str] = []

    def variant(name: str, value: float):
        return lambda: calls.append(name) or value

    rounds = alternate({"a": variant("a", 1.0), "b": variant("b", 2.0)}, rounds=3, block=2, warmup=1)
    warmup, round0, round1, round2 = (
        ["a", "b"],
        ["a", "a", "b", "b"],
        ["b", "b", "a", "a"],
        ["a", "a", "b", "b"],
    )
    assert calls == [*warmup, *round0, *round1, *round2]
    assert rounds.values == {"a": [1.0, 1.0, 1.0], "b": [2.0, 2.0, 2.0]}
    assert rounds.medians() == {"a": 1.0, "b": 2.0}
    after: list[int] = []
    non_numeric = alternate({"x": lambda: ("wall", "cpu")}, rounds=2, after_round=after.append)
    assert non_numeric.values == {"x": [("wall", "cpu")] * 2} and after == [0, 1]


def test_grid_is_every_combination_first_axis_outermost() -> None:
    assert list(grid({"lr": [1, 2], "d": ["a", "b"]})) == [
        {"lr": 1, "d": "a"},
        {"lr": 1, "d": "b"},
        {"lr": 2, "d": "a"},
        {"lr": 2, "d": "b"},
    ]


def test_run_folders_are_perr_benchmarks(tmp_path: Path) -> None:
    assert run_dir(tmp_path, "lstm", "5", "audio", 3) == benchmark_run_dir(tmp_path, "lstm", "5", "audio", 3)
    for seed in (10, 2, 0):
        run_dir(tmp_path, "lstm", "5", None, seed).mkdir(parents=True)
    assert [p.name for p in seed_runs(tmp_path, "lstm", "5")] == ["seed-0", "seed-2", "seed-10"]
    assert seed_runs(tmp_path, "lstm", "3") == []


def test_make_docs_is_up_to_date() -> None:
    """The generated docs match benchmarks/results, and every result file there is cited by a doc."""
    res = subprocess.run(
        [sys.executable, "-m", "benchmarks.make_docs", "--check"], cwd=REPO, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
