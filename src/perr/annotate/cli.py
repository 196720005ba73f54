"""`perr annotate` commands. Heavy imports stay inside the command functions so `perr --help` is instant."""

from __future__ import annotations

from pathlib import Path

import typer

from perr.errors import InputsFailed

app = typer.Typer(help="annotate stage (see docs/annotator_guide.md).", no_args_is_help=True)


def _console():
    from rich.console import Console

    return Console(), Console(stderr=True)


def _report_problems(err, problems, what: str) -> None:
    if not problems:
        return
    err.print(f"[yellow]{len(problems)} problem(s) in {what} (the rest was kept):[/yellow]")
    for p in problems:
        err.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)


@app.command("export")
def export_cmd(
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False, help="clip proposals (JSONL manifest)"),
    out: Path = typer.Option(..., "--out", help="folder for labeling_config.xml and tasks.json"),
    document_root: Path | None = typer.Option(
        None,
        "--document-root",
        file_okay=False,
        help="serve media from this folder via Label Studio local files (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT)",
    ),
    url_prefix: str = typer.Option(
        "/data/local-files/?d=", "--url-prefix", help="prefix put before paths relative to --document-root"
    ),
    cut: bool = typer.Option(
        False, "--cut", help="cut each clip to OUT/clips/<id>.mp4 (ffmpeg) so the player shows only the clip"
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="no progress bar"),
) -> None:
    """Write a Label Studio labeling config and tasks for clip proposals.

    Exit status: 0 when every clip became a task, 1 when any could not (named; the others are written)."""
    from perr.annotate.export import export_tasks

    con, err = _console()
    res = export_tasks(manifest, out, document_root, url_prefix, cut=cut, show_progress=not no_progress)
    _report_problems(err, res.problems, str(manifest))
    con.print(f"{res.n_tasks} task(s) → {res.tasks}\nlabeling config → {res.config}")
    if res.problems:  # exit status: 1 when any clip could not become a task (the others were written)
        raise InputsFailed()


@app.command("import")
def import_cmd(
    export: Path = typer.Argument(..., exists=True, dir_okay=False, help="Label Studio JSON export"),
    manifest: Path = typer.Option(
        ..., "--manifest", exists=True, dir_okay=False, help="the exported manifest"
    ),
    out: Path = typer.Option(..., "--out", help="final manifest (JSONL)"),
    problems_out: Path | None = typer.Option(None, "--problems", help="also write the problems as JSON"),
) -> None:
    """Adjudicate several annotators per clip (majority; ties → review) and write the final manifest.

    Exit status: 0 when every annotation was usable, 1 when any was not (named; the rest is imported),
    2 when the export or manifest cannot be read."""
    from perr.annotate.importer import import_annotations
    from perr.io import write_json

    con, err = _console()
    rep = import_annotations(export, manifest, out)
    _report_problems(err, rep.problems, str(export))
    if problems_out is not None:
        write_json(problems_out, [p.to_json() for p in rep.problems])
    counts = ", ".join(f"{k} {v}" for k, v in sorted(rep.status.items())) or "nothing adjudicated"
    con.print(f"{rep.n_tasks} task(s), {rep.n_cancelled} skipped annotation(s): {counts} → {rep.out}")
    if rep.problems:  # exit status: 1 when any annotation could not be used (the rest was imported)
        raise InputsFailed()


@app.command("agreement")
def agreement_cmd(
    export: Path = typer.Argument(..., exists=True, dir_okay=False, help="Label Studio JSON export"),
    out: Path | None = typer.Option(None, "--out", help="write the figures as JSON"),
    users: Path | None = typer.Option(
        None,
        "--users",
        exists=True,
        dir_okay=False,
        help='annotator names: JSON {"<id>": "name"} or Label Studio users list',
    ),
    by: str = typer.Option("week", "--by", help="trend grouping: week, day, or N (windows of N items)"),
) -> None:
    """Percent agreement (coarse, fine), Cohen's kappa per annotator pair, Fleiss' kappa, trend over time."""
    from rich.table import Table

    from perr.annotate.agreement import agreement_report
    from perr.annotate.records import load_users, read_export
    from perr.io import write_json

    con, err = _console()
    parsed = read_export(export)
    report = agreement_report(parsed, load_users(users), by)
    _report_problems(err, parsed.problems, str(export))

    def f(x, pct=False):
        return "–" if x is None else (f"{100 * x:.1f}%" if pct else f"{x:.3f}")

    t = Table(
        title=f"Agreement: {report['n_items_multi']} item(s) with ≥2 labels, {len(report['annotators'])} annotator(s)"
    )
    for col in ("measure", "coarse (3)", "fine (5)"):
        t.add_column(col)
    pa, fk = report["percent_agreement"], report["fleiss_kappa"]
    t.add_row("percent agreement", f(pa["coarse"], True), f(pa["fine"], True))
    t.add_row("Fleiss' kappa", f(fk["coarse"]), f(fk["fine"]))
    for r in report["cohen_kappa"]:
        t.add_row(
            f"Cohen's kappa {r['a']} × {r['b']} (n={r['n_items']})", f(r["kappa_coarse"]), f(r["kappa_fine"])
        )
    con.print(t)
    if report["trend"]:
        tt = Table(title=f"Percent agreement over time (by {by})")
        for col in ("period", "items", "coarse", "fine"):
            tt.add_column(col)
        for r in report["trend"]:
            tt.add_row(
                r["period"], str(r["n_items"]), f(r["percent_coarse"], True), f(r["percent_fine"], True)
            )
        con.print(tt)
    if out is not None:
        write_json(out, report)
        con.print(f"→ {out}")


@app.command("split")
def split_cmd(
    manifest: Path = typer.Argument(..., exists=True, dir_okay=False, help="final (labelled) manifest"),
    out: Path = typer.Option(..., "--out", help="manifest with the split field set"),
    seed: int = typer.Option(0, "--seed"),
    mode: str = typer.Option(
        "stratified", "--mode", help="stratified (paper: 20% per class) or drama (disjoint)"
    ),
    test_fraction: float = typer.Option(
        0.2,
        "--test-fraction",
        "--test-frac",
        min=0.0,
        max=0.95,
        help="share of each class (or of the clips, by drama) in test",
    ),
    val_fraction: float = typer.Option(
        0.0,
        "--val-fraction",
        "--val-frac",
        min=0.0,
        max=0.95,
        help="share of each class (or of the clips, by drama) in val",
    ),
) -> None:
    """Seeded train/val/test split written into each clip's `split` field."""
    from rich.table import Table

    from perr.annotate.splits import split_manifest, split_summary
    from perr.labels import FINE

    con, _ = _console()
    path, clips = split_manifest(manifest, out, mode, seed, test_fraction, val_fraction)
    t = Table(title=f"{mode} split, seed {seed}")
    t.add_column("split")
    for c in (*FINE, "total"):
        t.add_column(c, justify="right")
    for s, counts in split_summary(clips).items():
        t.add_row(s, *(str(counts[c]) for c in (*FINE, "total")))
    con.print(t)
    con.print(f"→ {path}")
