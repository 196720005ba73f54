"""`audio`: an embedding of a window of sound around each timestep, plus speech activity.

The clip's audio is decoded once (16 kHz mono) and analysed as a whole; each timestep then takes the
window centred on it, ``max(window, clip duration / T)`` seconds long. Backends (``--audio-backend``):

* ``logmel`` (default, chosen by speed: ~1000× real time on one core): mean and standard deviation
  over the window of 64 librosa log-mel bands → 128 values.
* ``resemblyzer``: the 256-d voice embedding of the window (resemblyzer's packaged LSTM, 1.6 s
  partials); who is speaking and how, ~10–50× real time on CPU.
* ``aisfx``: the 512-d general-sound embedding of aiSFX (its packaged CNN, 44.1 kHz mel blocks of
  ~2.3 s centred on each step); the richest and the slowest (~5 CPU-s per 30 s clip at T = 32).

Every backend appends three speech/energy values: loudness (RMS, dBFS / 100), mean speech
probability and the fraction of speech chunks (> 0.5) from silero-vad (packaged ONNX model).
A clip without an audio track gets zeros and mask 0 at every step; silent windows are real evidence
(mask 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perr.features.audio_backends import AUDIO_BACKENDS, HOP, SR, Embed, frame_windows
from perr.features.base import EXTRACTORS, ClipContext, Extractor, finish
from perr.features.config import ExtractConfig

_VAD_CHUNK = 512  # silero-vad's chunk at 16 kHz (32 ms)


class SpeechActivity:
    """Speech probability per 32 ms chunk from silero-vad's packaged ONNX model."""

    def __init__(self) -> None:
        import torch

        threads = torch.get_num_threads()
        import silero_vad  # its import calls torch.set_num_threads(1): undo that for the other models

        torch.set_num_threads(threads)
        self.model = silero_vad.load_silero_vad(onnx=True)
        torch.set_num_threads(threads)

    def probabilities(self, wave: np.ndarray) -> np.ndarray:
        import torch

        if len(wave) < _VAD_CHUNK:
            wave = np.pad(wave, (0, _VAD_CHUNK - len(wave)))
        return self.model.audio_forward(torch.from_numpy(np.ascontiguousarray(wave)), SR).numpy()[0]


@EXTRACTORS.register()
class AudioExtractor(Extractor):
    name = "audio"
    version = "1"
    needs_audio = True

    def __init__(self, backend: str = "logmel", window: float = 1.0) -> None:
        self.backend = backend
        self.window = window
        self._backend = AUDIO_BACKENDS.get(backend)
        self._embed: Embed | None = None
        self._vad: SpeechActivity | None = None

    @classmethod
    def create(cls, cfg: ExtractConfig, modality: str, shared: dict[str, Any]) -> AudioExtractor:
        return cls(backend=cfg.audio_backend, window=cfg.audio_window)

    @property
    def dim(self) -> int:
        return self._backend.dim + 3

    @property
    def extractor_id(self) -> str:
        return f"audio:{self.backend}+silero-vad"

    def extract(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        wave = ctx.audio
        if wave is None or len(wave) < SR // 10:
            return self.empty(ctx.T)
        if self._embed is None:
            self._embed = self._backend.factory()
            self._vad = SpeechActivity()
        assert self._vad is not None
        centres = ctx.times - ctx.start
        window = max(self.window, (ctx.end - ctx.start) / ctx.T)
        own = wave if self._backend.rate == SR else ctx.audio_at(self._backend.rate)
        emb = self._embed(own if own is not None else wave, centres, window)
        probs = self._vad.probabilities(wave)
        rms = np.sqrt(np.mean(wave[: len(wave) // HOP * HOP].reshape(-1, HOP) ** 2, axis=1) + 1e-12)
        extra = np.zeros((ctx.T, 3), np.float32)
        for i, (a, b) in enumerate(frame_windows(centres, window, SR / HOP, len(rms))):
            extra[i, 0] = 20 * np.log10(np.sqrt(np.mean(rms[a:b] ** 2)) + 1e-6) / 100.0
        for i, (a, b) in enumerate(frame_windows(centres, window, SR / _VAD_CHUNK, len(probs))):
            extra[i, 1] = probs[a:b].mean()
            extra[i, 2] = (probs[a:b] > 0.5).mean()
        # Steps whose window lies past the end of the decoded audio have no evidence.
        covered = centres - window / 2 < len(wave) / SR
        return finish(np.concatenate([emb, extra], axis=1), covered, ctx.valid)
