"""The PyAV (FFmpeg) backend of the video reader: probe, frames, audio and embedded subtitle streams.

Frames come out PTS-repaired (:class:`perr.video.clock.PtsRepair`); corrupt packets are skipped and
reported in ``problems``; audio and subtitle events are put on the same clock as frame times (audio
before time 0 is dropped, so picture and sound stay in sync).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from perr.video.clock import PtsRepair, clock_origin
from perr.video.sparse import NonrefSkipping, SparseDecodeUnsafe
from perr.video.types import RawFrame, SubtitleStreamInfo, VideoError, VideoInfo


def open_container(path: Path) -> Any:
    """A PyAV container with a video stream, or VideoError naming the problem."""
    import av

    if not path.exists():
        raise VideoError(path, "file not found")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as e:
        raise VideoError(
            path, f"cannot open ({type(e).__name__}: {e}); the file may be truncated or not a video"
        ) from e
    if not container.streams.video:
        container.close()
        raise VideoError(path, "no video stream")
    return container


class PyAVBackend:
    """Decodes one file with PyAV. `problems` collects repairs and corrupt packets for the caller."""

    name = "pyav"

    def __init__(self, path: Path, problems: list[str], threads: bool = True) -> None:
        self.path = path
        self.problems = problems
        self.container = open_container(path)
        if threads:
            # Slice threads, not frame threads: with frame threads, closing a decoder after a seek can
            # wait for ever inside avcodec_free_context (seen in the full test suite: test_video hung in
            # close()). Decoding is bit-exact either way.
            self.container.streams.video[0].thread_type = "SLICE"

    def close(self) -> None:
        self.container.close()

    def probe(self) -> VideoInfo:
        c = self.container
        vs = c.streams.video[0]
        tb = float(vs.time_base) if vs.time_base else 0.0
        if vs.duration is not None and tb:
            duration = vs.duration * tb
        elif c.duration is not None:
            duration = c.duration / 1_000_000
        else:
            duration = 0.0
        n = vs.frames or None
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else ((n / duration) if (n and duration) else 0.0)
        a = c.streams.audio[0] if c.streams.audio else None
        subs = tuple(
            SubtitleStreamInfo(
                index=s.index,
                codec=s.codec_context.name if s.codec_context else "unknown",
                language=s.language,
                title=(s.metadata or {}).get("title"),
            )
            for s in c.streams.subtitles
        )
        return VideoInfo(
            path=str(self.path),
            duration=float(duration),
            fps=fps,
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            n_frames=n,
            codec=vs.codec_context.name,
            start_time=clock_origin(c),
            has_audio=a is not None,
            audio_rate=a.codec_context.sample_rate if a is not None else None,
            audio_channels=a.codec_context.channels if a is not None else None,
            subtitle_streams=subs,
        )

    def timestamps(self) -> np.ndarray:
        """Sorted presentation times of every frame from packet PTS, without decoding pixels."""
        c = self.container
        vs = c.streams.video[0]
        c.seek(0)
        pts = [p.pts for p in c.demux(vs) if p.pts is not None and p.size > 0]
        return np.sort(np.asarray(pts, dtype=np.float64) * float(vs.time_base) - clock_origin(c))

    def keyframe_interval(self, seconds: float) -> float:
        c = self.container
        vs = c.streams.video[0]
        c.seek(0)
        tb = float(vs.time_base)
        keys = []
        for p in c.demux(vs):
            if p.pts is None:
                continue
            t = p.pts * tb
            if p.is_keyframe:
                keys.append(t)
            if t > seconds:
                break
        gaps = np.diff(keys)
        return float(np.median(gaps)) if len(gaps) else seconds

    def raw(
        self,
        start: float | None,
        end: float | None,
        keep: Callable[[float], bool],
        reference_only: bool = False,
        sparse: NonrefSkipping | None = None,
    ) -> Iterator[RawFrame]:
        """Frames from the keyframe before `start` (or the beginning) up to `end`, with repaired times.
        `keep` is unused here: PyAV converts lazily, so skipping costs nothing. With `sparse`, non-reference
        frames away from its times are not decoded (perr.video.sparse); indices still count them."""
        import av

        c = self.container
        vs = c.streams.video[0]
        cc = vs.codec_context
        cc.skip_frame = "NONREF" if reference_only else "DEFAULT"
        mode = cc.skip_frame
        c0 = clock_origin(c)
        tb = float(vs.time_base)
        if start is not None and start > 1.0:
            # Seek to the keyframe before `start` (backward) and decode forward from there.
            c.seek(int((start + c0 - 0.5) / tb), stream=vs, backward=True, any_frame=False)
        else:
            c.seek(0)
        repair = PtsRepair(tb, c0)
        bad_packets = 0

        def frames() -> Iterator[Any]:
            nonlocal bad_packets, mode
            for pkt in c.demux(vs):
                if sparse is not None:
                    full = True
                    if pkt.pts is not None:
                        t = round(pkt.pts * tb - c0, 9)
                        full = sparse.full(t)
                        sparse.note(t, full)
                    elif pkt.size > 0:
                        raise SparseDecodeUnsafe(f"{self.path}: a video packet without a timestamp")
                    want = "DEFAULT" if full else "NONREF"
                    if want != mode:
                        cc.skip_frame = mode = want
                try:
                    yield from pkt.decode()
                except av.error.FFmpegError as e:
                    bad_packets += 1
                    if bad_packets <= 3:
                        self.problems.append(f"corrupt packet at pts {pkt.pts}: {e}")

        def timed() -> Iterator[tuple[Any, float]]:
            for fr in frames():
                done = repair.push(fr)
                if sparse is not None and repair.shuffled and sparse.skipped_any:
                    raise SparseDecodeUnsafe(f"{self.path}: frame timestamps out of order")
                yield from done
            yield from repair.flush()

        index = 0
        for fr, t in timed():
            if end is not None and t > end:
                break
            yield RawFrame(index if sparse is None else sparse.index(t), t, fr)
            index += 1
        if repair.shuffled:
            self.problems.append(
                "frame timestamps out of order (packed B-frames or a broken index); times were re-sorted"
            )
        if bad_packets > 3:
            self.problems.append(f"{bad_packets} corrupt packets in total")
        if index == 0:
            raise VideoError(self.path, "no frame could be decoded")

    @staticmethod
    def to_rgb(raw: RawFrame, size: tuple[int, int] | None) -> np.ndarray:
        # threads=1: PyAV's default lets swscale start threads per frame — same pixels, 1.5–3.5× the CPU
        if size is None:
            return raw.payload.to_ndarray(format="rgb24", threads=1)
        return raw.payload.to_ndarray(format="rgb24", width=size[0], height=size[1], threads=1)

    def audio(self, sample_rate: int, mono: bool, start: float | None, end: float | None) -> np.ndarray:
        """The first audio stream, resampled, float32 in [-1, 1]; (n,) mono or (channels, n)."""
        import av

        c = self.container
        if not c.streams.audio:
            raise VideoError(self.path, "no audio stream")
        a = c.streams.audio[0]
        c.seek(0)
        layout = "mono" if mono else ("stereo" if (a.codec_context.channels or 1) >= 2 else "mono")
        res = av.AudioResampler(format="flt", layout=layout, rate=sample_rate)
        c0 = clock_origin(c)
        chunks: list[np.ndarray] = []
        first_t: float | None = None
        try:
            for pkt in c.demux(a):
                try:
                    decoded = pkt.decode()
                except av.error.FFmpegError as e:
                    self.problems.append(f"corrupt audio packet at pts {pkt.pts}: {e}")
                    continue
                for fr in decoded:
                    if first_t is None and fr.pts is not None:
                        first_t = fr.pts * float(fr.time_base) - c0
                    for o in res.resample(fr):
                        chunks.append(o.to_ndarray())
            for o in res.resample(None):
                chunks.append(o.to_ndarray())
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"audio decoding failed: {e}") from e
        if not chunks:
            raise VideoError(self.path, "audio stream has no decodable samples")
        x = np.concatenate(chunks, axis=1).astype(np.float32)  # packed flt → (1, n*ch)
        nch = 1 if layout == "mono" else 2
        x = x.reshape(-1, nch).T
        # Align sample 0 with time 0 (pad or trim the audio's own start offset).
        lead = round((first_t or 0.0) * sample_rate)
        if lead > 0:
            x = np.concatenate([np.zeros((nch, lead), np.float32), x], axis=1)
        elif lead < 0:
            x = x[:, -lead:]
        s0 = round((start or 0.0) * sample_rate)
        s1 = None if end is None else round(end * sample_rate)
        x = x[:, s0:s1]
        return x[0] if mono else x

    def subtitle_events(self, stream: int | None) -> list[tuple[float, float, str]]:
        """Text events (start, end, text) of an embedded subtitle stream (first one by default)."""
        import av

        c = self.container
        subs = list(c.streams.subtitles)
        if not subs:
            return []
        s = subs[0] if stream is None else next((x for x in subs if x.index == stream), None)
        if s is None:
            raise VideoError(self.path, f"no subtitle stream with index {stream}")
        c.seek(0)
        c0 = clock_origin(c)
        events: list[tuple[float, float, str]] = []
        for pkt in c.demux(s):
            if pkt.pts is None:
                continue
            try:
                decoded = pkt.decode()
            except av.error.FFmpegError as e:
                self.problems.append(f"corrupt subtitle packet at pts {pkt.pts}: {e}")
                continue
            t = pkt.pts * float(pkt.time_base) - c0
            dur = (pkt.duration or 0) * float(pkt.time_base)
            for sub in decoded:
                # PyAV ≥ 14 yields one subtitle rectangle per item (timed by its packet); older
                # versions yield a set of rectangles with display offsets.
                rects = list(sub) if hasattr(sub, "__iter__") else [sub]
                text = "\n".join(x for x in (_subtitle_rect_text(r) for r in rects) if x)
                if not text:
                    continue
                off0 = getattr(sub, "start_display_time", 0) / 1000.0
                off1 = getattr(sub, "end_display_time", 0) / 1000.0
                s0 = t + off0
                s1 = t + (off1 if off1 else dur)
                events.append((max(0.0, s0), max(s0, s1), text))
        return events


def _subtitle_rect_text(rect: Any) -> str:
    """Plain text of one decoded subtitle rectangle (ASS override tags and style fields removed)."""
    for attr in ("dialogue", "text", "ass"):
        val = getattr(rect, attr, None)
        if isinstance(val, bytes):
            val = val.decode("utf-8", "replace")
        if not val:
            continue
        val = str(val)
        if attr == "ass":  # "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text"
            val = val.split(",", 8)[-1]
        val = re.sub(r"\{[^}]*\}", "", val)
        return val.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", " ").strip()
    return ""
