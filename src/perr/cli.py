"""The `perr` command line. One verb group per stage; each command calls a Python function of the
same name so the CLI and the API stay one thing. Heavy imports live inside commands.

Exit status, for every command, is decided here (:class:`_Commands`): 0 when all it was given
succeeded; 1 when a command over many inputs met some that failed (:class:`perr.errors.InputsFailed`); 2 for a
usage error — a bad option (typer's own checks, ``typer.BadParameter``) or anything perr refuses to use
(:class:`perr.errors.PerrError`: an unreadable manifest, store, checkpoint or export, a run folder holding
another configuration), printed as one ``error: …`` line instead of a traceback."""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from perr.annotate.cli import app as annotate_app
from perr.cli_options import ADDRESS, JOBS, NO_SHARED_FS, NUM_CPUS, BackendChoice, execution_config
from perr.config import DEMO_EPOCHS, DEMO_LR
from perr.construct.cli import app as build_app
from perr.construct.cli import stats_cmd as build_stats_cmd
from perr.data.cli import app as data_app
from perr.errors import InputsFailed, PerrError
from perr.features.cli import app as features_app


class _Commands(TyperGroup):
    """perr's root command group: the one place where perr's errors become exit statuses."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        from rich.markup import escape

        try:
            return super().invoke(ctx)
        except PerrError as e:
            _console().print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except InputsFailed as e:
            if e.summary:
                _console().print(f"[red]{escape(e.summary)}[/red]", highlight=False)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=_Commands,
    name="perr",
    help="Pairwise Emotional Relationship Recognition in drama and movie videos (Gao et al., ACM MM'21).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(
    build_app, name="build", help="Episodes → shots, segments, clip proposals, characters, subtitles."
)
app.add_typer(
    annotate_app, name="annotate", help="Label Studio export/import, agreement, adjudication, splits."
)
app.add_typer(
    features_app, name="features", help="Per-timestep multimodal features: extract per clip, pack a store."
)
app.add_typer(
    data_app, name="data", help="Validate manifests/stores, synthesise the default dataset, import corpora."
)
# `perr stats MANIFEST --out DIR` is the same command as `perr build stats` (the README lists both).
app.command("stats", help="Dataset statistics of paper §3.3 for a manifest (alias of `perr build stats`).")(
    build_stats_cmd
)


_SET_HELP = "Override one config key, e.g. --set epochs=5 --set model=lstm (repeatable). Keys: below."


def _config_keys() -> str:
    """The epilog of the training commands: every TrainConfig key with its default, choices or bounds
    and help, generated from the config (perr.settings), one paragraph per key."""
    from perr.config import TrainConfig
    from perr.settings import settings_help

    keys = settings_help(TrainConfig).replace("\n", "\n\n")
    return f"Config keys for --set / --config (every run folder's config.yaml lists their values):\n\n{keys}"


def _config(config: str | None, overrides: list[str], **explicit: object):
    from perr.config import load_config

    items = list(overrides) + [f"{k}={v}" for k, v in explicit.items() if v is not None]
    try:
        return load_config(config, items)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise typer.BadParameter(f"--seeds {text!r}: expected comma-separated integers like 0,1,2") from None


def _figure(entry: dict, key: str) -> str:
    """mean ± std over seeds in percent; one seed has no std."""
    std = entry.get(f"{key}_std")
    return f"{100 * entry[f'{key}_mean']:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")


def _console():
    from rich.console import Console

    return Console(stderr=True)


@app.command("train", epilog=_config_keys())
def train_cmd(
    store: str = typer.Argument(..., help="Feature store root (folders train/ [val/] [test/])."),
    out: str = typer.Option(..., "--out", "-o", help="Run folder; re-running on the same folder resumes."),
    config: str | None = typer.Option(
        None, "--config", "-c", help="YAML file of config keys (dataclass defaults ← file ← --set)."
    ),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    model: str | None = typer.Option(None, "--model", "-m", help="Model name (see `perr models`)."),
    task: str | None = typer.Option(
        None, "--task", "-t", help="Task: 5 (fine) or 3 (coarse); a store may define others."
    ),
    seeds: str = typer.Option(
        "0", "--seeds", "-s", help="Comma-separated seeds; one sub-run each, mean ± std in summary.json."
    ),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda[:N] | mps"),
) -> None:
    """Train one model with the paper's protocol (Adam 5e-3, StepLR ×0.1/15 ep, 50 epochs, batch 16).

    Writes config.yaml, checkpoint.pt (resume), best.pt, history.jsonl and metrics.json per seed.
    """
    from perr.train import train_seeds

    cfg = _config(config, set_, model=model, task=task, device=device)
    console = _console()
    summary = train_seeds(
        store, cfg, _seeds(seeds), out, progress=lambda msg, i, n: console.print(msg, highlight=False)
    )
    n = len(summary.get("seeds", []))
    for t, entry in summary.items():
        if isinstance(entry, dict) and "micro_f1_mean" in entry:
            console.print(
                f"task {t}: Micro-F1 {_figure(entry, 'micro_f1')}  Macro-F1 {_figure(entry, 'macro_f1')}  (n={n})"
                + ("  (SYNTHETIC data)" if summary.get("synthetic") else ""),
                highlight=False,
            )


@app.command("evaluate")
def evaluate_cmd(
    checkpoint: str = typer.Argument(..., help="A checkpoint (best.pt or checkpoint.pt)."),
    store: str = typer.Argument(..., help="Feature store root."),
    split: str = typer.Option("test", "--split", help="Split to evaluate."),
    out: str | None = typer.Option(None, "--out", "-o", help="Folder for metrics.json and predictions.csv."),
    device: str = typer.Option("auto", "--device"),
) -> None:
    """Evaluate a checkpoint: Micro/Macro/weighted F1, per-class F1 and confusion matrix at every scale."""
    from perr.train import evaluate

    console = _console()
    result = evaluate(checkpoint, store, split=split, out=out, device=device)
    tag = " (SYNTHETIC data)" if result["synthetic"] else ""
    for t, m in result["metrics"].items():
        console.print(
            f"task {t}: Micro-F1 {100 * m['micro_f1']:.2f}  Macro-F1 {100 * m['macro_f1']:.2f}  (n={m['n']}){tag}",
            highlight=False,
        )


@app.command("models")
def models_cmd() -> None:
    """List the registered models (the nine rows of Table 3)."""
    from perr.models import MODELS

    for name in MODELS.names():
        typer.echo(name)


@app.command("benchmark", epilog=_config_keys())
def benchmark_cmd(
    out: str = typer.Option(
        ..., "--out", "-o", help="Output folder: results.csv, results.json, table.md, PNG figures, runs/."
    ),
    dataset: str = typer.Option(
        "synthetic", "--dataset", "-d", help="synthetic | meld | a dialogue CSV | a feature-store path."
    ),
    models: str = typer.Option(
        "all", "--models", help="Comma-separated model names, or 'all' (Table 3 order)."
    ),
    tasks: str = typer.Option("5,3", "--tasks", help="Comma-separated tasks (5,3 for PERR; 7,3 for MELD)."),
    seeds: str = typer.Option("0,1,2", "--seeds", "-s", help="Comma-separated seeds."),
    drop: list[str] = typer.Option(
        [],
        "--drop",
        help="Modality ablation like Table 4: person|background|audio|text (repeatable); adds rows with that group left out.",
    ),
    config: str | None = typer.Option(None, "--config", "-c", help="YAML config for every run."),
    set_: list[str] = typer.Option([], "--set", help=_SET_HELP),
    device: str | None = typer.Option(None, "--device"),
    figure_models: str | None = typer.Option(
        None,
        "--figure-models",
        help="Two models compared in the per-class F1 figure, e.g. lstm,smta-transformer.",
    ),
    steps: int | None = typer.Option(
        None,
        "--T",
        help="Timesteps per clip when the dataset is built here (synthetic: 32; meld/CSV: dialogue context, 32).",
    ),
    target: bool = typer.Option(
        False,
        "--target",
        help="meld/CSV: add the 'target' modality (the classified utterance at every step).",
    ),
    target_context: int = typer.Option(
        0,
        "--target-context",
        min=0,
        help="meld/CSV with --target: the 'target' text also holds the K previous utterances "
        "(see `perr data dialogue-store --help`).",
    ),
    backend: BackendChoice | None = typer.Option(
        None,
        help="where the runs go: local worker processes or Ray tasks (default: one after another in this process)",
    ),
    jobs: int = JOBS,
    address: str | None = ADDRESS,
    num_cpus: int | None = NUM_CPUS,
    no_shared_fs: bool = NO_SHARED_FS,
    cpus_per_run: int = typer.Option(1, min=1, help="with --backend: torch threads (CPUs) of each run"),
    gpus_per_run: float | None = typer.Option(
        None, min=0, help="with --backend ray: GPUs of each run (default: 1 where the cluster has GPUs)"
    ),
) -> None:
    """Run models × tasks × seeds (× --drop ablations) and write Table-3/4-shaped results beside the paper's figures.

    With --backend local|ray each model × task × seed run is a unit of work with --cpus-per-run torch
    threads (the results do not depend on where it runs); finished runs are reused, so a re-run resumes."""
    from pathlib import Path

    from perr.benchmark import resolve_dataset, run_benchmark
    from perr.execution import ExecutionConfig
    from perr.models import MODELS

    console = _console()
    names = MODELS.names() if models == "all" else [m.strip() for m in models.split(",") if m.strip()]
    for n in names:
        if n not in MODELS:
            raise typer.BadParameter(f"--models: unknown {n!r}; choose from {', '.join(MODELS.names())}")
    cfg = _config(config, set_, device=device)
    pair = tuple(figure_models.split(",")) if figure_models else None
    options: dict[str, object] = {} if steps is None else {"T": steps}
    dialogue = dataset == "meld" or dataset.endswith(".csv")
    if (target or target_context) and not dialogue:
        raise typer.BadParameter(
            f"--target/--target-context build a dialogue store: use them with --dataset meld or a CSV, not {dataset!r}"
        )
    if target_context and not target:
        raise typer.BadParameter("--target-context K needs --target (it sets the target modality's text)")
    if target:
        options["with_target"] = True
    if target_context:
        options["target_context"] = target_context
    execution = (
        execution_config(backend, jobs, address, num_cpus)
        if backend is not None
        else ExecutionConfig("inline")
    )
    store = resolve_dataset(dataset, Path(out) / "data", **options)
    drops: list[str | None] = [None, *drop]
    run_benchmark(
        store,
        out,
        names,
        tasks=[t.strip() for t in tasks.split(",")],
        seeds=_seeds(seeds),
        drops=drops,
        base=cfg,
        figure_models=pair,
        progress=lambda msg: console.print(msg, highlight=False),
        execution=execution,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
    )
    console.print(
        Path(out, "table.md").read_text(encoding="utf-8"), highlight=False, markup=False, soft_wrap=True
    )


@app.command("demo")
def demo_cmd(
    out: str = typer.Option("runs/demo", "--out", "-o", help="Output folder."),
    epochs: int = typer.Option(
        DEMO_EPOCHS, "--epochs", help="Reduced from the paper's 50 so the demo ends in minutes."
    ),
    n: int = typer.Option(1500, "--n", help="Synthetic clips to generate."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds."),
    lr: float = typer.Option(
        DEMO_LR,
        "--lr",
        help="Paper: 5e-3. At 6 epochs the attention models collapse to the majority class with it.",
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda[:N] | mps"),
) -> None:
    """The main job on the embedded SYNTHETIC default: generate an ERATO-shaped feature set, train every
    registered model (the nine of Table 3 and pair-cross) for 5- and 3-class tasks (reduced epochs), print the Table-3-shaped comparison.

    The synthetic features are laid out like the real extractors' output, so the checkpoints it writes also
    load in `perr predict` (their answers on real clips demonstrate the pipeline, they mean nothing)."""
    from pathlib import Path

    from perr.benchmark import run_benchmark
    from perr.config import demo_config
    from perr.data.synth import ensure_synthetic
    from perr.models import MODELS

    console = _console()
    cfg = demo_config(epochs, lr, device)
    note = (
        f"Demo settings: {epochs} epochs (paper 50), lr {lr:g} (paper 5e-3) with one ×0.1 step at epoch {cfg.lr_step}, "
        f"d_model {cfg.d_model}, batch {cfg.batch_size}; SYNTHETIC data — the figures show the toolkit works, "
        "they are not results on ERATO."
    )
    console.print(
        f"[bold]perr demo[/bold]: SYNTHETIC ERATO-shaped data ({n} clips), the paper's nine models and pair-cross, tasks 5 and 3.\n{note}",
        highlight=False,
    )
    store = ensure_synthetic(Path(out) / "data", n=n, like_extractors=True)
    run_benchmark(
        store,
        out,
        MODELS.names(),
        tasks=("5", "3"),
        seeds=_seeds(seeds),
        base=cfg,
        note=note,
        progress=lambda msg: console.print(msg, highlight=False),
    )
    console.print(
        Path(out, "table.md").read_text(encoding="utf-8"), highlight=False, markup=False, soft_wrap=True
    )
    console.print(
        f"Outputs in {out}: results.csv, results.json, table.md, fig6_per_class_f1.png, fig7_attention.png; "
        f"checkpoints under {out}/runs/<model>/task-<5|3>/all/seed-0/best.pt",
        highlight=False,
    )


@app.command("predict")
def predict_cmd(
    clips: list[str] = typer.Argument(
        None, help="Video files or folders of videos (each file is one clip); or give --manifest."
    ),
    checkpoint: str = typer.Option(
        ...,
        "--checkpoint",
        "-k",
        help="A perr checkpoint (best.pt) trained on features from the same extractors.",
    ),
    out: str = typer.Option(
        "runs/predict", "--out", "-o", help="Output folder: <clip>/prediction.json and <clip>/report.html."
    ),
    pair: str | None = typer.Option(
        None,
        "--pair",
        help="The two characters: candidate numbers from the report (e.g. 1,3) or ids (c1,c3). Default: top-2.",
    ),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda[:N] | mps"),
    report: bool = typer.Option(
        True, "--report/--no-report", help="Write the HTML report with timeline and attention images."
    ),
    subtitles: str = typer.Option(
        "auto", "--subtitles", help="auto (sidecar .srt / embedded stream, else OCR) | ocr | none"
    ),
    manifest: str | None = typer.Option(
        None,
        "--manifest",
        help="Predict the proposals of a `perr build run` manifest instead: its characters (the video's "
        "cast ids and names, as edited with `perr build cast`), no detection run again.",
    ),
    clip_id: list[str] = typer.Option(
        [], "--clip", help="With --manifest: only these clip ids (repeatable)."
    ),
) -> None:
    """What is the relationship between the two main characters of each clip? Writes prediction.json
    (fine and coarse class → probability, the pair, the model, missing modalities, and a joint head's
    own reading when the model has one: joint_task) and an HTML report.
    A file that cannot be read is reported and the other clips go on (exit 1 at the end)."""
    from perr.inference import predict

    if not clips and manifest is None:
        raise typer.BadParameter("give video files or folders, or --manifest")
    console = _console()

    def show(p) -> None:
        if p.ok:
            r = p.result
            best = max(r["coarse"], key=r["coarse"].get)
            fine = f"{max(r['fine'], key=r['fine'].get)} / " if r["fine"] else ""
            joint = f"  (joint head, task {r['joint']['task']}: {r['joint']['pred']})" if "joint" in r else ""
            console.print(
                f"[green]✓[/green] {p.clip}: {fine}{best}{joint}  pair {r['pair']}  → {p.out}",
                highlight=False,
            )
        else:
            console.print(f"[red]✗[/red] {p.clip}: {p.error}", highlight=False)

    results = predict(
        clips or [],
        checkpoint,
        out=out,
        pair=pair,
        device=device,
        report=report,
        on_clip=show,
        subtitles=subtitles,
        manifest=manifest,
        clip_ids=clip_id,
    )
    failed = [r for r in results if not r.ok]
    if failed:
        raise InputsFailed(f"{len(failed)} of {len(results)} clip(s) failed")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
