"""The per-clip prediction report: one self-contained folder (report.html + PNG images) that opens in a
browser from disk, without a server. It shows the pair's thumbnails, a timeline of shots and of when each
character is on screen, the subtitles, the predicted probabilities, and the attention weight per modality
over time (paper Fig. 7)."""

from __future__ import annotations

import html
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from perr.io import atomic_open, atomic_path
from perr.manifest import Clip
from perr.report.figures import attention_timeline_figure


@dataclass
class ReportData:
    clip: Clip
    model: str
    fine: Mapping[str, float]
    coarse: Mapping[str, float]
    pair: Sequence[str]
    missing: Sequence[str] = ()
    attention: np.ndarray | None = None  # [T, M]
    attention_masks: np.ndarray | None = None  # [T, M]
    modalities: Sequence[str] = ()
    times: Sequence[float] | None = None
    warnings: Sequence[str] = field(default_factory=list)


def timeline_figure(clip: Clip, pair: Sequence[str], path: str | os.PathLike) -> Path:
    """Shots, each character's on-screen spans (pair highlighted) and subtitle events on one time axis."""
    start = clip.start
    end = clip.end if clip.end is not None else max([s.end for s in clip.shots] + [start + 1])
    rows = ["shots", *[c.id for c in clip.characters], "subtitles"]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.2))
    colors = plt.get_cmap("tab10")
    for i, shot in enumerate(clip.shots):
        ax.broken_barh([(shot.start, shot.duration)], (0, 0.8), facecolors=colors(i % 10), alpha=0.6)
    for r, c in enumerate(clip.characters, start=1):
        color = "tab:red" if c.id in pair[:1] else "tab:blue" if c.id in pair[1:2] else "tab:gray"
        ax.broken_barh([(s.start, s.duration) for s in c.spans], (r, 0.8), facecolors=color)
    sub_row = len(rows) - 1
    ax.broken_barh([(s.start, s.duration) for s in clip.subtitles], (sub_row, 0.8), facecolors="tab:green")
    ax.set_yticks([i + 0.4 for i in range(len(rows))], [f"{r} (pair)" if r in pair else r for r in rows])
    ax.set_xlim(start, end)
    ax.set_ylim(-0.2, len(rows))
    ax.invert_yaxis()
    ax.set_xlabel("time (s)")
    ax.set_title("Shots, characters on screen, subtitles")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def _prob_table(title: str, probs: Mapping[str, float]) -> str:
    best = max(probs, key=probs.get) if probs else None
    rows = "".join(
        f'<tr class="{"best" if c == best else ""}"><td>{html.escape(c)}</td><td>{p:.3f}</td>'
        f'<td><div class="bar" style="width:{200 * p:.0f}px"></div></td></tr>'
        for c, p in probs.items()
    )
    return f"<table class='probs'><caption>{html.escape(title)}</caption>{rows}</table>"


def write_report(data: ReportData, folder: str | os.PathLike, base: Path) -> Path:
    """Write `folder/report.html` and its images; thumbnails are copied so the folder is self-contained."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    clip = data.clip
    timeline_figure(clip, data.pair, folder / "timeline.png")
    attention_html = "<p>This model has no attention (LSTM baseline).</p>"
    if data.attention is not None:
        attention_timeline_figure(
            np.asarray(data.attention),
            list(data.modalities),
            folder / "attention.png",
            masks=data.attention_masks,
            times=data.times,
            title=f"{data.model}: attention weight per modality over time",
        )
        attention_html = (
            '<img id="attention" src="attention.png" alt="attention weights per modality over time">'
        )
    thumbs = []
    for rank, cid in enumerate(clip.candidates or [c.id for c in clip.characters], start=1):
        char = clip.character(cid)
        role = (
            "person A"
            if cid == data.pair[0]
            else "person B"
            if len(data.pair) > 1 and cid == data.pair[1]
            else "candidate"
        )
        img = ""
        src = clip.resolve(char.thumbnail, base) if char.thumbnail else None
        if src is not None and src.exists():
            name = f"thumb_{rank}{src.suffix}"
            shutil.copyfile(src, folder / name)
            img = f'<img src="{name}" alt="{html.escape(cid)}">'
        thumbs.append(
            f'<figure class="{"pair" if role != "candidate" else ""}">{img}<figcaption>#{rank} {html.escape(cid)}'
            f"{' · ' + html.escape(char.name) if char.name else ''} — {role}"
            f"<br>{char.seconds_on_screen:.1f} s on screen, {char.occurrences} detections</figcaption></figure>"
        )
    subs = (
        "".join(
            f"<tr><td>{s.start:.2f}–{s.end:.2f} s</td><td>{html.escape(s.text)}</td></tr>"
            for s in clip.subtitles
        )
        or "<tr><td colspan=2>no subtitles</td></tr>"
    )
    coarse_best = max(data.coarse, key=data.coarse.get)
    fine_best = max(data.fine, key=data.fine.get) if data.fine else coarse_best
    missing = ", ".join(data.missing) if data.missing else "none"
    warnings = "".join(f"<p class='warn'>{html.escape(w)}</p>" for w in data.warnings)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>perr — {html.escape(clip.clip_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1000px; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; text-align: center; }}
figure img {{ height: 120px; border: 3px solid #ccc; }} figure.pair img {{ border-color: #c33; }}
table {{ border-collapse: collapse; margin: 0.5em 1em 1em 0; }} td {{ padding: 2px 8px; border-bottom: 1px solid #eee; }}
table.probs {{ display: inline-table; vertical-align: top; }} tr.best td {{ font-weight: bold; }}
.bar {{ background: #4a7; height: 10px; }} .warn {{ color: #a40; }} img {{ max-width: 100%; }}
</style></head><body>
<h1 id="verdict">{html.escape(fine_best)} ({html.escape(coarse_best)})</h1>
<p>Clip <code>{html.escape(clip.clip_id)}</code> · video <code>{html.escape(str(clip.video))}</code> ·
{clip.start:.2f}–{(clip.end or 0):.2f} s · model <code>{html.escape(data.model)}</code> ·
pair <span id="pair">{html.escape(" & ".join(data.pair))}</span> · missing modalities: <span id="missing">{html.escape(missing)}</span></p>
{warnings}
<h2>Relationship</h2>
{_prob_table("fine (5 classes)", data.fine) if data.fine else ""}{_prob_table("coarse (3 classes)", data.coarse)}
<h2>Characters</h2>
<div id="characters">{"".join(thumbs)}</div>
<h2>Timeline</h2>
<img id="timeline" src="timeline.png" alt="timeline of shots and characters">
<h2>Attention over time</h2>
{attention_html}
<h2>Subtitles</h2>
<table id="subtitles">{subs}</table>
</body></html>
"""
    path = folder / "report.html"
    with atomic_open(path) as fh:
        fh.write(page)
    return path
