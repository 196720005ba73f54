"""Write a Label Studio labeling config and tasks file for clip proposals (paper §3.2, multi-stage).

One task per clip: the clip video (either the episode with the clip's interval shown above it and as
a media fragment, or with `cut=True` the clip itself cut to its own file, which is what an annotator
should get for long episodes), the OCR subtitles pre-filled as an editable prediction, the top-3 candidate faces as picture choices
(pick exactly two), the five fine classes with the Table 1 definitions as hints (coarse is derived,
never asked) and a discard choice with a reason. Pair, label and reason are required only while
visible (Label Studio skips hidden controls), so a discard needs just its reason. Label Studio cannot
require "exactly two" choices; `perr annotate import` enforces it and reports violations.
"""

from __future__ import annotations

import functools
import html
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from perr.annotate import schema
from perr.annotate.schema import AnnotationError
from perr.io import atomic_open, atomic_path, write_json
from perr.labels import DEFINITIONS, FINE, FINE_TO_COARSE
from perr.manifest import Clip, load_manifest
from perr.progress import progress_allowed

#: Label Studio serves files under its local-files document root at this URL prefix.
LOCAL_FILES_PREFIX = "/data/local-files/?d="
_URL_SCHEMES = ("http://", "https://", "s3://", "gs://", "azure-blob://", "/data/")


@dataclass(frozen=True)
class ExportProblem:
    clip_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"clip {self.clip_id}: {self.field}: {self.message}"


@dataclass
class ExportResult:
    config: Path
    tasks: Path
    n_tasks: int
    problems: list[ExportProblem] = field(default_factory=list)


def labeling_config() -> str:
    """The Label Studio XML config; control names come from `schema` so import reads the same names."""
    label_choices = "\n".join(
        f"      <Choice value={quoteattr(c)} hint={quoteattr(DEFINITIONS[c])}/>" for c in FINE
    )
    definitions = "\n".join(
        f'      <Header size="6" value={quoteattr(f"{c} ({FINE_TO_COARSE[c]}): {DEFINITIONS[c]}")}/>'
        for c in FINE
    )
    v = schema.VIDEO
    return f"""<View>
  <Text name="info" value="$info"/>
  <Video name="{v}" value="$video"/>
  <Header value="1. Watch the clip and correct the subtitles: one line per subtitle, '[start-end] text', times in seconds as pre-filled"/>
  <TextArea name="{schema.SUBTITLES}" toName="{v}" editable="true" rows="2" placeholder="[12.30-14.85] corrected subtitle text"/>
  <Header value="If there is no salient interacting pair (or more than two people interact), discard the clip"/>
  <Choices name="{schema.DISCARD}" toName="{v}" choice="single">
    <Choice value="{schema.DISCARD_VALUE}" hint="No salient interacting pair, a complicated interaction, or a broken clip"/>
  </Choices>
  <View visibleWhen="choice-selected" whenTagName="{schema.DISCARD}" whenChoiceValue="{schema.DISCARD_VALUE}">
    <TextArea name="{schema.DISCARD_REASON}" toName="{v}" rows="1" maxSubmissions="1" required="true"
      requiredMessage="Say why the clip is discarded" placeholder="why is this clip discarded?"/>
  </View>
  <View visibleWhen="choice-unselected" whenTagName="{schema.DISCARD}" whenChoiceValue="{schema.DISCARD_VALUE}">
    <Header value="2. Pick exactly TWO main interacting characters among the candidate faces"/>
    <Choices name="{schema.PAIR}" toName="{v}" choice="multiple" showInline="true" value="$pair_options"
      required="true" requiredMessage="Pick the two interacting characters (or discard the clip)"/>
    <Header value="3. Choose the emotional relationship between the two (paper Table 1)"/>
    <Choices name="{schema.LABEL}" toName="{v}" choice="single-radio" showInline="true" required="true"
      requiredMessage="Choose the relationship (or discard the clip)">
{label_choices}
    </Choices>
    <View>
{definitions}
    </View>
  </View>
</View>
"""


def media_url(
    path: str,
    base: Path,
    document_root: Path | None = None,
    url_prefix: str = LOCAL_FILES_PREFIX,
) -> str:
    """A URL Label Studio can load for a manifest path.

    URLs pass through. With `document_root`, a file under it becomes `url_prefix + quoted relative path`
    (by default Label Studio's local-files URL, served when LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT is
    that root). Without it the absolute path is returned for the user to serve another way.
    """
    if path.startswith(_URL_SCHEMES):
        return path
    p = Path(path)
    p = (p if p.is_absolute() else base / p).resolve()
    if document_root is None:
        return str(p)
    root = document_root.resolve()
    try:
        rel = p.relative_to(root)
    except ValueError:
        raise AnnotationError(f"{p} is not under the document root {root}") from None
    return url_prefix + quote(rel.as_posix(), safe="/")


def _time_fragment(clip: Clip) -> str:
    """The clip interval as a W3C media fragment on the episode URL.

    It documents the interval in the task; Label Studio 1.23's player does not seek to it (checked in a
    browser), which is why the info line repeats the interval and `cut=True` exists.
    """
    if clip.end is None and clip.start == 0:
        return ""
    end = "" if clip.end is None else f",{clip.end:.3f}"
    return f"#t={clip.start:.3f}{end}"


@functools.lru_cache(maxsize=16)
def _read_cast(path: str, mtime_ns: int) -> dict[str, list[str]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {c["id"]: list(c.get("thumbnails") or []) for c in data.get("characters", [])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def cast_thumbnails(clip: Clip, base: Path) -> dict[str, list[str]]:
    """Character id → the cast's thumbnails (paths relative to the build folder) of the clip's video,
    from the cast file the build names in ``extra.cast`` (empty when there is none)."""
    ref = clip.extra.get("cast")
    p = clip.resolve(ref, base) if isinstance(ref, str) else None
    if p is None or not p.is_file():
        return {}
    return _read_cast(str(p), p.stat().st_mtime_ns)


def clip_task(
    clip: Clip,
    base: Path,
    document_root: Path | None = None,
    url_prefix: str = LOCAL_FILES_PREFIX,
    cut_video: Path | None = None,
) -> dict:
    """One Label Studio task (data + OCR-subtitle prediction) for a clip proposal.

    With `cut_video` (the clip cut to its own file) the player shows just the clip and subtitle times
    are written relative to the clip start; `data.time_offset` lets import put them back in episode time.
    """

    def url(path: str) -> str:
        return media_url(path, base, document_root, url_prefix)

    span = f"{clip.start:.2f} s – {clip.end:.2f} s" if clip.end is not None else f"from {clip.start:.2f} s"
    where = " · ".join(x for x in (clip.drama, clip.episode) if x)
    offset = clip.start if cut_video is not None else 0.0
    video = url(str(cut_video)) if cut_video is not None else url(clip.video) + _time_fragment(clip)
    shifted = [
        e.model_copy(update={"start": max(0.0, e.start - offset), "end": max(0.0, e.end - offset)})
        for e in clip.subtitles
    ]
    options = []
    cast = cast_thumbnails(clip, base)
    for cid in clip.candidates:
        char = next((c for c in clip.characters if c.id == cid), None)
        thumbs = [t for t in [char.thumbnail if char else None, *cast.get(cid, [])] if t][:3]
        img = "".join(
            f'<img src="{html.escape(url(t), quote=True)}" style="height:96px;margin-right:4px"/>'
            for t in thumbs
        )
        label = f"{cid} · {char.name}" if char is not None and char.name else cid
        options.append({"value": cid, "html": f"{img}{'<br/>' if img else ''}{html.escape(label)}"})
    lines = [schema.format_subtitle_line(e) for e in shifted]
    task: dict = {
        "data": {
            "clip_id": clip.clip_id,
            "video": video,
            "info": f"clip {clip.clip_id}"
            + (f" · {where}" if where else "")
            + (
                f" · cut from {span} of the episode; subtitle times are within the clip"
                if cut_video is not None
                else f" · watch {span}"
            ),
            "time_offset": offset,
            "start": clip.start,
            "end": clip.end,
            "candidates": list(clip.candidates),
            "pair_options": options,
            "ocr_subtitles": "\n".join(lines),
        }
    }
    if lines:
        task["predictions"] = [
            {
                "model_version": schema.OCR_MODEL_VERSION,
                "result": [
                    {
                        "id": "ocr",
                        "from_name": schema.SUBTITLES,
                        "to_name": schema.VIDEO,
                        "type": "textarea",
                        "value": {"text": lines},
                    }
                ],
            }
        ]
    return task


def _check(clip: Clip, base: Path) -> list[ExportProblem]:
    """Problems that make a clip unlabelable in Label Studio (it is skipped and reported)."""
    out = []
    video = clip.resolve(clip.video, base)
    if not clip.video.startswith(_URL_SCHEMES) and video is not None and video.is_dir():
        out.append(
            ExportProblem(
                clip.clip_id, "video", f"{video} is a frames folder; Label Studio needs a video file"
            )
        )
    if len(clip.candidates) < 2:
        out.append(
            ExportProblem(
                clip.clip_id, "candidates", f"needs at least 2 candidates, has {len(clip.candidates)}"
            )
        )
    return out


def cut_clip(src: Path, start: float, end: float, dest: Path) -> Path:
    """Cut [start, end) of a video to its own H.264/AAC file (frame-accurate re-encode, atomic, reused).

    Raises RuntimeError with ffmpeg's message when the cut fails.
    """
    if dest.exists():
        return dest
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg not found on PATH (Debian package `ffmpeg`)")
    with atomic_path(dest) as tmp:
        cmd = [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-ss",
            f"{start:.3f}",
            "-i",
            str(src),
            "-t",
            f"{end - start:.3f}",
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(tmp),
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"ffmpeg failed on {src}: {res.stderr.strip()[-500:]}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # readable by a Label Studio running as another user, like any new file
    return dest


def export_tasks(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    document_root: str | os.PathLike | None = None,
    url_prefix: str = LOCAL_FILES_PREFIX,
    cut: bool = False,
    show_progress: bool = False,
) -> ExportResult:
    """Write `labeling_config.xml` and `tasks.json` for every exportable clip of a manifest.

    With `cut`, each clip is first cut to `out_dir/clips/<clip_id>.mp4` (kept between runs, so an
    interrupted export resumes); a clip that cannot be cut is reported and left out.
    """
    from rich.progress import track

    manifest = Path(manifest)
    out = Path(out_dir)
    base = manifest.parent
    root = Path(document_root) if document_root is not None else None
    tasks, problems = [], []
    clips = load_manifest(manifest)
    for clip in track(
        clips, description="cutting clips" if cut else "tasks", disable=not progress_allowed(show_progress)
    ):
        bad = _check(clip, base)
        if cut and not bad and (clip.end is None or clip.video.startswith(_URL_SCHEMES)):
            bad = [
                ExportProblem(
                    clip.clip_id,
                    "end" if clip.end is None else "video",
                    "cutting needs a local video file and an end time",
                )
            ]
        if not bad:
            try:
                cut_video = None
                if cut:
                    src = clip.resolve(clip.video, base)
                    cut_video = cut_clip(src, clip.start, clip.end, out / "clips" / f"{clip.clip_id}.mp4")
                tasks.append(clip_task(clip, base, root, url_prefix, cut_video))
            except ValueError as e:
                bad = [ExportProblem(clip.clip_id, "media", str(e))]
            except RuntimeError as e:
                bad = [ExportProblem(clip.clip_id, "video", str(e))]
        problems.extend(bad)
    config = out / "labeling_config.xml"
    with atomic_open(config) as fh:
        fh.write(labeling_config())
    tasks_path = out / "tasks.json"
    write_json(tasks_path, tasks)
    return ExportResult(config=config, tasks=tasks_path, n_tasks=len(tasks), problems=problems)
