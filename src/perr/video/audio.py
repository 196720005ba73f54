"""A file's audio in spans, decoded in fixed pieces on an absolute time grid.

The audio of [start, end] is cut from pieces k = ⌊start / P⌋ … ⌊end / P⌋ of P seconds each. Every piece is
decoded on its own — seek to a little before k·P, decode and resample forward, keep [k·P, (k+1)·P) — so a
clip's audio costs time in proportion to the clip's length (never the file's), and a piece's samples are
a pure function of (file, rate, k): a run that starts at any clip, or resumes after a kill, gets the same
samples. Clips read in time order reuse the pieces they share (a small cache).

Each piece gets its own decoder (a file opened per piece, ~3 ms; 30 ms for a 45-minute mp4): FFmpeg's
AAC decoder fills noise-substituted bands from a random generator that lives as long as the decoder.

Samples are placed on perr's clock (seconds from the video stream's start, see :mod:`perr.video.clock`);
time before the audio's first sample is silence. Works on video files and audio-only files (ERATO's mp3).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from perr.video.clock import clock_origin
from perr.video.types import VideoError

#: Seconds per piece, and the decoding lead before each piece (codec and resampler warm-up).
PIECE = 20.0
PREROLL = 0.5


class AudioSpans:
    """Mono float32 audio of one file at `rate`, span by span (see module docstring)."""

    def __init__(
        self, path: str | os.PathLike, rate: int, piece: float = PIECE, preroll: float = PREROLL
    ) -> None:
        import av

        self.path, self.rate, self.piece, self.preroll = Path(path), rate, piece, preroll
        self.problems: list[str] = []
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"cannot open ({type(e).__name__}: {e})") from e
        self.has_audio = bool(self._container.streams.audio)
        self._origin = clock_origin(self._container) if self._container.streams.video else 0.0

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> AudioSpans:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def span(self, start: float, end: float) -> np.ndarray | None:
        """Samples of [start, end) (None when the file has no audio track)."""
        if not self.has_audio:
            return None
        s0, s1 = round(start * self.rate), round(end * self.rate)
        per = round(self.piece * self.rate)
        parts = []
        for k in range(max(0, s0) // per, max(0, s1 - 1) // per + 1):
            piece = self._piece(k)
            lo, hi = max(s0, k * per) - k * per, min(s1, (k + 1) * per) - k * per
            parts.append(piece[lo:hi])
        out = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        return out if len(out) == s1 - s0 else np.pad(out, (0, max(0, s1 - s0 - len(out))))

    def _piece(self, k: int) -> np.ndarray:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        piece = self._decode(k)
        self._cache[k] = piece
        while len(self._cache) > 3:
            self._cache.popitem(last=False)
        return piece

    def _decode(self, k: int) -> np.ndarray:
        """Piece k: [k·P, (k+1)·P) at `rate`, zeros where the stream has nothing."""
        import av

        per = round(self.piece * self.rate)
        out = np.zeros(per, np.float32)
        t_lo = k * self.piece
        # A fresh decoder per piece: decoders keep state across seeks that no flush resets (FFmpeg's AAC
        # decoder draws perceptual-noise-substitution bands from a random generator seeded once per
        # decoder), so a piece decoded after others would differ from the same piece decoded first.
        with av.open(str(self.path), metadata_errors="ignore") as c:
            return self._decode_from(c, k, t_lo, per, out)

    def _decode_from(self, c: Any, k: int, t_lo: float, per: int, out: np.ndarray) -> np.ndarray:
        import av

        stream = c.streams.audio[0]
        target = max(0.0, t_lo - self.preroll) + self._origin
        c.seek(int(target / float(stream.time_base)), stream=stream, backward=True, any_frame=False)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=self.rate)
        index: int | None = None  # sample index (from t_lo) of the next resampled sample
        end = per + round(0.05 * self.rate)  # a little past the piece, so the resampler's tail is in
        try:
            for pkt in c.demux(stream):
                try:
                    frames = pkt.decode()
                except av.error.FFmpegError as e:
                    self.problems.append(f"corrupt audio packet at pts {pkt.pts}: {e}")
                    continue
                for fr in frames:
                    if index is None:
                        if fr.pts is None:
                            continue
                        index = round((float(fr.pts * fr.time_base) - self._origin - t_lo) * self.rate)
                    for o in resampler.resample(fr):
                        index = _place(out, o.to_ndarray()[0], index)
                if index is not None and index >= end:
                    break
            else:
                if index is not None:
                    for o in resampler.resample(None):
                        index = _place(out, o.to_ndarray()[0], index)
        except av.error.FFmpegError as e:
            raise VideoError(self.path, f"audio decoding failed near {t_lo:.1f} s: {e}") from e
        return out


def _place(out: np.ndarray, samples: np.ndarray, first: int) -> int:
    """Copy `samples`, whose first sample has index `first` in the piece, into it; the next index."""
    lo, hi = max(0, first), min(len(out), first + len(samples))
    if hi > lo:
        out[lo:hi] = samples[lo - first : hi - first]
    return first + len(samples)


def audio_span(path: str | os.PathLike, rate: int, start: float, end: float) -> np.ndarray | None:
    """One span of a file's audio (see :class:`AudioSpans`); None when the file has no audio track."""
    with AudioSpans(path, rate) as spans:
        return spans.span(start, end)
