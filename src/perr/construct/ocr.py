"""Subtitle OCR: the subtitle band of sampled frames read only when it changes, merged into timed cues.

OCR (paper: CTPN + CRNN; here the packaged PP-OCR detector + recogniser of ``rapidocr``, Chinese and
English) is the expensive path, so it runs only when the subtitle band changes: each sampled frame's
band is reduced to a coarse mask of subtitle-like pixels (bright, unsaturated, next to a dark outline
— the white text with black edge that burned-in subtitles use), and OCR runs only when that mask
appears, disappears or changes shape. Adjacent OCR results that are the same line (normalised
Levenshtein similarity ≥ 0.7, rapidfuzz; or one reading's letters a ≥ 0.85 partial match of the
other's, the garbled fragment a busy pattern appearing behind a subtitle leaves) are merged into one
event; event edges are placed half-way between the two samples that bracket a change, so the timing
error is at most half a sampling step. (Not when a busy pattern shares the band with a subtitle: the
mask barely changes when the subtitle leaves, and a reading behind the pattern may find no line, so
the cue's end is off by 0.9–1.2 s on 5 of 10 pattern seeds of the graphics fixture, 0.44 s at most
on the others; its text and the cue count are right on all 10.)

Only subtitles become cues, not the other text in the band (logos, signs, captions, timecodes,
textures the recogniser reads as letters). Each recognised line must be (:func:`subtitle_line`):

- centred: its middle within ``max_offset`` (0.2) of the band's width from the centre. Burned-in
  subtitles are centred (measured offsets ≤ 0.015); corner logos and signs are not (0.38, 0.40).
- outlined: of its bright, unsaturated pixels at least ``min_outline`` (0.75) lie within 2 px of a dark
  one. Subtitles are drawn with a black edge (measured 0.88–1.0 on audrey_hardsub and the burned
  zh+en fixture); scene text on a lit sign or a screen has none (0.0), a bold logo has dark only at
  its rim (0.54–0.68).
- confident: recogniser score ≥ ``min_score`` (0.8). Subtitle lines score 0.91–1.0; readings of
  patterns and textures 0.33–0.66.
- plausible text: at least ``min_chars`` letters or CJK characters, making up at least half of the
  non-space characters (a timecode "00:00:07.360" and digit runs are not dialogue).

and the cue must persist: on screen at least ``min_duration`` (0.5 s), so that a subtitle is seen in
two samples at the build's 3 fps (subtitle guidelines show a line for ≥ 0.8 s). The figures are those of
the synthetic graphics fixture (tests/test_subtitles_ocr.py: a logo, a sign, a pattern and a
timecode in the band of a real clip) and the two burned-subtitle fixtures.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from perr.registry import Registry
from perr.subtitles import Cue, partial_similarity, text_similarity
from perr.video import VideoReader


# --- OCR engines --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TextLine:
    """One recognised line and its box in the image that was read (pixels)."""

    text: str
    score: float
    y: float  # top of the line box (for reading order)
    x: float
    x1: float = 0.0  # right and bottom of the box
    y1: float = 0.0


class OcrEngine:
    """Interface: ``read(rgb image) -> list[TextLine]`` (any order)."""

    name: ClassVar[str] = ""

    def read(self, image: np.ndarray) -> list[TextLine]:
        raise NotImplementedError


OCR_ENGINES: Registry[type[OcrEngine]] = Registry("OCR engine")


@OCR_ENGINES.register("rapidocr")
class RapidOcrEngine(OcrEngine):
    """rapidocr 3.x (PP-OCR det + rec, Chinese + English) on onnxruntime, weights from the wheel.

    The detector is limited by the long side (``limit_type=max``): its default (short side scaled
    *up* to 736 px) makes a wide band image ~10× slower for no gain on subtitle-size text.
    """

    name = "rapidocr"

    def __init__(
        self,
        det_side: int = 640,
        min_score: float = 0.5,
        threads: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        from rapidocr import RapidOCR

        p: dict[str, Any] = {
            "Global.use_cls": False,
            "Global.log_level": "error",  # "text detection result is empty" is normal for a band
            "Global.text_score": min_score,
            "Det.limit_type": "max",
            "Det.limit_side_len": det_side,
        }
        if threads:
            p["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
        p.update(params or {})
        self._ocr = RapidOCR(params=p)
        logging.getLogger("RapidOCR").setLevel(logging.ERROR)

    def read(self, image: np.ndarray) -> list[TextLine]:
        res = self._ocr(np.ascontiguousarray(image))
        if res is None or res.txts is None or res.boxes is None:
            return []
        return [
            TextLine(
                str(t),
                float(s),
                float(np.min(b[:, 1])),
                float(np.min(b[:, 0])),
                float(np.max(b[:, 0])),
                float(np.max(b[:, 1])),
            )
            for t, s, b in zip(res.txts, res.scores, np.asarray(res.boxes), strict=True)
        ]


def join_lines(lines: list[TextLine], line_gap: float = 12.0) -> str:
    """Reading order: rows top to bottom (boxes within `line_gap` px share a row), left to right."""
    rows: list[list[TextLine]] = []
    for ln in sorted(lines, key=lambda t: t.y):
        if rows and abs(ln.y - rows[-1][0].y) <= line_gap:
            rows[-1].append(ln)
        else:
            rows.append([ln])
    return "\n".join(" ".join(t.text for t in sorted(r, key=lambda t: t.x)) for r in rows)


def is_text(text: str, min_chars: int = 2) -> bool:
    """Plausible dialogue: at least `min_chars` letters or CJK characters, and letters make up at least
    half of the non-space characters (timecodes, digit runs and symbol strings are not)."""
    letters = sum(ch.isalpha() for ch in text)
    visible = sum(not ch.isspace() for ch in text)
    return letters >= min_chars and 2 * letters >= visible


def outline_masks(image: np.ndarray, cfg: BandConfig) -> tuple[np.ndarray, np.ndarray]:
    """Subtitle-coloured pixels (bright, unsaturated) and those of them within 2 px of a dark pixel."""
    import cv2

    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    bright = (hsv[..., 2] >= cfg.min_value) & (hsv[..., 1] <= cfg.max_saturation)
    dark = (hsv[..., 2] <= cfg.max_outline_value).astype(np.uint8)
    return bright, bright & (cv2.dilate(dark, np.ones((5, 5), np.uint8)) > 0)


def subtitle_line(line: TextLine, bright: np.ndarray, outlined: np.ndarray, cfg: BandConfig) -> bool:
    """Whether a recognised line is a subtitle rather than other text in the band (module docstring)."""
    width = bright.shape[1]
    if abs(0.5 * (line.x + line.x1) - 0.5 * width) > cfg.max_offset * width:
        return False
    if line.score < cfg.min_score or not is_text(line.text, cfg.min_chars):
        return False
    rows = slice(max(0, int(line.y)), int(line.y1) + 1)
    cols = slice(max(0, int(line.x)), int(line.x1) + 1)
    n_bright = int(bright[rows, cols].sum())
    return n_bright > 0 and outlined[rows, cols].sum() >= cfg.min_outline * n_bright


# --- band sampling ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BandConfig:
    top: float = 0.70  # the band is rows [top·H, bottom·H)
    bottom: float = 1.0
    ocr_width: int = 960  # the band is resized (up or down) to this width before OCR, then padded
    min_value: int = 200  # "subtitle-coloured": HSV value ≥ this …
    max_saturation: int = 70  # … and saturation ≤ this (white/grey text)
    max_outline_value: int = 70  # … next to a pixel at most this bright (the text's outline/shadow)
    grid: tuple[int, int] = (48, 8)  # coarse mask size (w, h) used to detect changes
    min_text_fraction: float = 0.003  # below this share of band pixels the band is empty
    change: float = 0.25  # Jaccard distance between coarse masks that counts as a new subtitle
    merge_similarity: float = 0.7  # adjacent readings at least this similar are one event (a busy
    # background can garble a second reading of the same line: 0.73 measured; distinct lines ≤ 0.2)
    fragment_similarity: float = 0.85  # … or one's letters align this well with a stretch of the
    # other's (a pattern appearing behind a subtitle: fragments 0.87 and 1.0 measured; distinct ≤ 0.4)
    min_duration: float = 0.5  # events shorter than this are dropped (flicker, passing graphics)
    # What a subtitle line looks like (module docstring: the measured figures behind each value).
    min_chars: int = 2  # letters or CJK characters in a line
    max_offset: float = 0.2  # line centre from the band centre, as a share of the band's width
    min_outline: float = 0.75  # share of the line's bright pixels next to a dark outline
    min_score: float = 0.8  # recogniser confidence of a line


class SubtitleSampler:
    """Streaming stage: feed sampled frames in time order (``update``), then ``finish``.

    OCR runs on the band only when the subtitle-coloured mask changes; results are merged into cues.
    """

    def __init__(self, engine: OcrEngine, config: BandConfig | None = None) -> None:
        self.engine = engine
        self.cfg = config or BandConfig()
        self.cues: list[Cue] = []
        self.ocr_calls = 0
        self._sig: np.ndarray | None = None  # coarse mask at the last OCR
        self._prev_t: float | None = None
        self._open: Cue | None = None
        self._pending: tuple[float, np.ndarray] | None = None  # (start edge, band) awaiting a stable read
        self._retry: float | None = None  # start edge of a band read without result, to read once more

    @property
    def idle(self) -> bool:
        """No subtitle on screen or waiting to be read: a chunk may stop feeding frames here."""
        return self._open is None and self._pending is None and self._sig is None

    def _mask(self, band: np.ndarray) -> tuple[np.ndarray, float]:
        import cv2

        small = cv2.resize(band, (band.shape[1] // 2, band.shape[0] // 2), interpolation=cv2.INTER_AREA)
        # Subtitle strokes are bright *and* edged by their dark outline/shadow; lamps, sky and white
        # shirts are bright inside. Keep bright pixels with a dark pixel within a couple of pixels.
        m = outline_masks(small, self.cfg)[1].astype(np.float32)
        frac = float(m.mean())
        coarse = cv2.resize(m, self.cfg.grid, interpolation=cv2.INTER_AREA) > 0.02
        return coarse, frac

    def band(self, image: np.ndarray) -> np.ndarray:
        h = image.shape[0]
        return image[int(h * self.cfg.top) : int(h * self.cfg.bottom)]

    def _ocr(self, band: np.ndarray) -> tuple[str, float]:
        import cv2

        w = band.shape[1]
        if w != self.cfg.ocr_width:  # small text is read far better upscaled (measured on 360p)
            s = self.cfg.ocr_width / w
            band = cv2.resize(
                band,
                (self.cfg.ocr_width, max(1, round(band.shape[0] * s))),
                interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC,
            )
        pad = max(16, band.shape[0] // 4)
        band = cv2.copyMakeBorder(band, pad, pad, 8, 8, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        self.ocr_calls += 1
        bright, outlined = outline_masks(band, self.cfg)
        lines = [ln for ln in self.engine.read(band) if subtitle_line(ln, bright, outlined, self.cfg)]
        if not lines:
            return "", 0.0
        return join_lines(lines, line_gap=band.shape[0] * 0.06), float(np.mean([ln.score for ln in lines]))

    def update(self, time: float, image: np.ndarray) -> None:
        """One sampled frame. A changed band is read one sample later, once it is stable (the first
        frame of a new subtitle is often a fade or a low-quality predicted frame); a subtitle seen in
        one sample only is read from that sample. A band whose reading held no subtitle line is read
        once more at the next sample (a busy background behind the text can spoil one reading)."""
        band = self.band(image)
        sig, frac = self._mask(band)
        edge = time if self._prev_t is None else 0.5 * (self._prev_t + time)
        self._prev_t = time
        if frac < self.cfg.min_text_fraction:  # empty band
            self._flush_pending()
            self._sig = self._retry = None
            self._close(edge)
            return
        if self._sig is not None:
            union = np.logical_or(sig, self._sig).sum()
            dist = 1.0 - np.logical_and(sig, self._sig).sum() / union if union else 0.0
            if dist < self.cfg.change:  # same subtitle still on screen
                if self._pending is not None:
                    p_edge, _ = self._pending
                    self._pending = None
                    self._read(p_edge, band, may_retry=True)
                elif self._retry is not None:
                    r_edge, self._retry = self._retry, None
                    self._read(r_edge, band)
                return
        self._flush_pending()
        self._sig, self._retry = sig, None
        self._pending = (edge, band.copy())

    def _flush_pending(self) -> None:
        if self._pending is not None:
            p_edge, p_band = self._pending
            self._pending = None
            self._read(p_edge, p_band)

    def _read(self, edge: float, band: np.ndarray, may_retry: bool = False) -> None:
        """OCR the band of a subtitle that appeared at `edge`, and open, extend or close events."""
        text, score = self._ocr(band)
        if not text:
            self._close(edge)
            self._retry = edge if may_retry else None
            return
        if self._open is not None and same_line(self._open.text, text, self.cfg):
            if score > self._open.score:  # keep the most confident reading of the same line
                self._open.text, self._open.score = text, score
            return
        self._close(edge)
        self._open = Cue(edge, edge, text, score)

    def _close(self, t: float) -> None:
        if self._open is not None:
            self._open.end = t
            if self._open.end - self._open.start >= self.cfg.min_duration:
                self.cues.append(self._open)
            self._open = None

    def finish(self, end_time: float) -> list[Cue]:
        self._flush_pending()
        self._close(end_time)
        return merge_adjacent(self.cues, self.cfg)


def same_line(a: str, b: str, cfg: BandConfig) -> bool:
    """Two readings of one subtitle line: near-identical, or one a garbled fragment of the other."""
    return (
        text_similarity(a, b) >= cfg.merge_similarity or partial_similarity(a, b) >= cfg.fragment_similarity
    )


def merge_adjacent(cues: list[Cue], cfg: BandConfig | None = None, max_gap: float = 0.6) -> list[Cue]:
    """Merge neighbouring cues that are readings of one line (OCR flicker around one subtitle)."""
    cfg = cfg or BandConfig()
    out: list[Cue] = []
    for c in sorted(cues, key=lambda c: c.start):
        if out and c.start - out[-1].end <= max_gap and same_line(out[-1].text, c.text, cfg):
            prev = out[-1]
            if c.score > prev.score:
                prev.text, prev.score = c.text, c.score
            prev.end = max(prev.end, c.end)
        else:
            out.append(Cue(c.start, c.end, c.text, c.score))
    return out


def ocr_subtitles(
    video: str | os.PathLike,
    fps: float = 4.0,
    engine: OcrEngine | None = None,
    config: BandConfig | None = None,
    max_side: int | None = 720,
    reference_only: bool = True,
) -> tuple[list[Cue], int]:
    """OCR a whole video's subtitle band (standalone use); returns (cues, number of OCR calls).

    Defaults match ``perr build run`` (720 px frames, reference frames only) so what the tests
    measure is what the build does."""
    sampler = SubtitleSampler(engine or RapidOcrEngine(), config)
    with VideoReader(video) as r:
        last = 0.0
        for f in r.frames(fps=fps, max_side=max_side, reference_only=reference_only):
            sampler.update(f.time, f.image)
            last = f.time
        end = max(r.info.duration, last)
    return sampler.finish(end), sampler.ocr_calls
