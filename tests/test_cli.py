"""The real `perr` entry point: help on every command, train/evaluate/benchmark on a tiny store."""

import csv
import json
import os
import subprocess
import sys

import pytest

from conftest import MPL_CYCLE, colour_share, png_pixels
from perr.report.paper import TABLE3
from toydata import TINY, make_toy_store

PERR = [sys.executable, "-m", "perr"]


def run(*args, ok=True):
    env = {
        **os.environ,
        "COLUMNS": "200",
    }  # rich wraps help to the terminal width; a wide one keeps names whole
    out = subprocess.run([*PERR, *args], capture_output=True, text=True, timeout=600, env=env)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


@pytest.mark.parametrize(
    "cmd, says",
    [
        ([], ["build", "annotate", "features", "data", "train", "evaluate", "benchmark", "predict", "demo"]),
        (["train"], ["--seeds", "--set", "--device", "resume"]),
        (["evaluate"], ["--split", "--device"]),
        (["benchmark"], ["--dataset", "--drop", "--device"]),
        (["demo"], ["SYNTHETIC", "--device", "--epochs"]),
        (["data"], ["validate", "synth", "convert-meld", "import-erato"]),
        (["data", "dialogue-store"], ["--target", "--target-context", "EmoBERTa"]),
        (["data", "validate"], ["NaN/inf"]),
        (["data", "synth"], ["--difficulty", "--like-extractors", "0.05<=x<=5.0"]),
        (["build"], ["run", "shots", "stats"]),
        (["build", "run"], ["--max-clip", "--face-detector", "--jobs", "35.0", "--no-progress"]),
        (["annotate"], ["export", "import", "agreement", "split"]),
        (["features"], ["extract", "pack"]),
        (["features", "extract"], ["--T", "--extractor", "--audio-backend", "--backend", "--no-progress"]),
    ],
)
def test_help_everywhere(cmd, says):
    """Every command explains itself: its own options and subcommands, defaults and bounds from the config."""
    out = run(*cmd, "--help").stdout
    assert "Usage" in out
    for word in says:
        assert word in out, f"`perr {' '.join(cmd)} --help` does not mention {word!r}"


def test_set_help_is_generated_from_the_config():
    """The `--set` keys in `perr train --help` and `perr benchmark --help` are generated from TrainConfig's
    declarations (perr.settings): every field's line, with its default and choices or bounds."""
    import dataclasses
    import re

    import typer

    from perr.cli import app
    from perr.config import TrainConfig
    from perr.settings import settings_help

    lines = settings_help(TrainConfig).splitlines()
    assert len(lines) == len(dataclasses.fields(TrainConfig))
    assert 'preload ("auto"; auto | on | off)' in lines[-3] and lines[3].startswith("d_model (256; ≥ 1)")
    commands = typer.main.get_command(app).commands
    for name in ("train", "benchmark"):
        assert all(line in commands[name].epilog for line in lines), name
    words = set(re.findall(r"[a-z0-9_]+", run("train", "--help").stdout))
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in words]
    assert not missing, f"perr train --help does not name config key(s) {missing}"


def test_models_lists_table3_rows():
    """The paper's nine rows in Table 3's order, then ours (pair-cross, issue 15)."""
    assert run("models").stdout.split() == [*TABLE3, "pair-cross"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_toy_store(tmp_path_factory.mktemp("toy"))


@pytest.mark.slow
def test_train_then_evaluate(store, tmp_path):
    sets = [a for s in [*TINY, "epochs=2"] for a in ("--set", s)]
    out = run(
        "train", str(store), "--out", str(tmp_path / "run"), "--model", "smta-dot", "--seeds", "0,1", *sets
    )
    assert "task 5: Micro-F1" in out.stderr and "SYNTHETIC" in out.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert len(summary["5"]["micro_f1_values"]) == 2
    ev = run(
        "evaluate", str(tmp_path / "run" / "seed-1" / "best.pt"), str(store), "--out", str(tmp_path / "ev")
    )
    assert "task 3" in ev.stderr
    m = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert m["metrics"]["5"]["micro_f1"] == pytest.approx(
        json.loads((tmp_path / "run" / "seed-1" / "metrics.json").read_text())["test"]["5"]["micro_f1"]
    )


def test_bad_set_key_is_a_clear_error(store, tmp_path):
    out = run("train", str(store), "--out", str(tmp_path / "r"), "--set", "epoch=2", ok=False)
    assert out.returncode != 0 and "unknown config key 'epoch'" in out.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (["benchmark", "--dataset", "synthetic", "--target"], "use them with --dataset meld or a CSV"),
        (["benchmark", "--dataset", "meld", "--target-context", "2"], "needs --target"),
        (["data", "dialogue-store", "meld", "--target-context", "2"], "needs --target"),
    ],
)
def test_dialogue_only_options_are_clear_errors_elsewhere(args, says, tmp_path):
    out = run(*args, "--out", str(tmp_path / "o"), ok=False)
    assert out.returncode != 0 and says in " ".join(out.stderr.split()), out.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_benchmark_writes_tables_and_figures(store, tmp_path):
    sets = [a for s in [*TINY, "epochs=2"] for a in ("--set", s)]
    out_dir = tmp_path / "bench"
    run(
        "benchmark",
        "--dataset",
        str(store),
        "--models",
        "lstm,smta-transformer",
        "--tasks",
        "5,3",
        "--seeds",
        "0,1",
        "--drop",
        "audio",
        "--out",
        str(out_dir),
        *sets,
    )
    with open(out_dir / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["model"], r["task"], r["drop"]) for r in rows} == {
        (m, t, d) for m in ("lstm", "smta-transformer") for t in ("5", "3") for d in ("", "audio")
    }
    for r in rows:
        assert r["seeds"] == "2"
        for k in ("micro_f1_mean", "micro_f1_std", "macro_f1_mean", "macro_f1_std"):
            assert 0.0 <= float(r[k]) <= 1.0
    table = (out_dir / "table.md").read_text()
    assert "66.55 / 49.81" in table and "SYNTHETIC" in table and "Table 4" in table
    fig6 = png_pixels(out_dir / "fig6_per_class_f1.png")  # bars of both models in both task panels
    assert colour_share(fig6, MPL_CYCLE[0]) > 0.005 and colour_share(fig6, MPL_CYCLE[1]) > 0.005
    fig7 = png_pixels(out_dir / "fig7_attention.png")  # one line per modality of smta-transformer
    assert all(colour_share(fig7, c, tol=20) > 0.0005 for c in MPL_CYCLE[:5])
    data = json.loads((out_dir / "results.json").read_text())
    assert data["synthetic"] is True and len(data["rows"]) == 8
