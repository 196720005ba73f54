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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from perr.features.base import EXTRACTORS, ClipContext, Extractor, finish
from perr.registry import Registry

if TYPE_CHECKING:
    from perr.features.config import ExtractConfig

SR = 16000
HOP = 160  # 10 ms analysis frames
N_MELS = 64
_VAD_CHUNK = 512  # silero-vad's chunk at 16 kHz (32 ms)

Embed = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class AudioBackend:
    """An audio embedding: its width, the sample rate it wants, and a factory that loads the model
    and returns ``embed(wave, centres_s, window_s) -> [T, dim]``."""

    dim: int
    rate: int
    factory: Callable[[], Embed]


AUDIO_BACKENDS: Registry[AudioBackend] = Registry("audio backend")


def _logmel_backend() -> Embed:
    import librosa

    def embed(wave: np.ndarray, centres: np.ndarray, window: float) -> np.ndarray:
        S = librosa.power_to_db(
            librosa.feature.melspectrogram(y=wave, sr=SR, n_fft=400, hop_length=HOP, n_mels=N_MELS), ref=1.0
        ).T  # [frames, 64]
        out = np.zeros((len(centres), 2 * N_MELS), np.float32)
        for i, (a, b) in enumerate(_frame_windows(centres, window, SR / HOP, len(S))):
            seg = S[a:b]
            out[i] = np.concatenate([seg.mean(0), seg.std(0)]) / 100.0  # dB → O(1)
        return out

    return embed


def _resemblyzer_backend() -> Embed:
    import torch
    from resemblyzer import VoiceEncoder, wav_to_mel_spectrogram

    enc = VoiceEncoder("cpu", verbose=False)
    n = 160  # resemblyzer's partial utterance: 160 frames of 10 ms

    def embed(wave: np.ndarray, centres: np.ndarray, window: float) -> np.ndarray:
        mel = wav_to_mel_spectrogram(wave).astype(np.float32)  # [frames, 40]
        if len(mel) == 0:
            return np.zeros((len(centres), 256), np.float32)
        c = np.round(centres * 100).astype(int)
        idx = np.clip(c[:, None] - n // 2 + np.arange(n)[None], 0, len(mel) - 1)
        with torch.inference_mode():
            return enc(torch.from_numpy(mel[idx])).numpy().astype(np.float32)

    return embed


def _aisfx_backend() -> Embed:
    import librosa
    import torch
    from aisfx.inference import (
        EMB_BLOCK_LENGTH,
        F_MAX,
        F_MIN,
        MEL_BINS,
        SAMPLE_RATE,
        SPEC_BLOCK_LENGTH,
        SPEC_HOP_LENGTH,
        get_path_modelWeights,
        load_bestModel,
    )

    # aiSFX ships its weights as a pickled (weights, dataset dict) pair inside its wheel: a trusted file.
    weights, datasets = torch.load(get_path_modelWeights(), map_location="cpu", weights_only=False)
    model = load_bestModel(weights, datasets, "cpu")
    rate = SAMPLE_RATE / SPEC_HOP_LENGTH  # spectrogram frames per second
    n = EMB_BLOCK_LENGTH

    def embed(wave: np.ndarray, centres: np.ndarray, window: float) -> np.ndarray:
        peak = float(np.max(np.abs(wave))) or 1.0  # aiSFX's own recipe: peak-normalise, log10(1e4·mel + 1)
        S = librosa.feature.melspectrogram(y=wave / peak, sr=SAMPLE_RATE, n_mels=MEL_BINS, norm=1.0, fmin=F_MIN, fmax=F_MAX,
                                           htk=True, power=2.0, hop_length=SPEC_HOP_LENGTH, win_length=SPEC_BLOCK_LENGTH)
        S = (np.log10(S * 10000.0 + 1) / 9.457798957824707).T.astype(np.float32)  # [frames, 96], 'original' norm
        S = np.concatenate([S, np.zeros((n, S.shape[1]), np.float32)])
        c = np.round(centres * rate).astype(int)
        idx = np.clip(c[:, None] - n // 2 + np.arange(n)[None], 0, len(S) - 1)
        with torch.no_grad():
            return model.get_embedding(torch.from_numpy(S[idx])).numpy().astype(np.float32)

    return embed


AUDIO_BACKENDS.register("logmel")(AudioBackend(2 * N_MELS, SR, _logmel_backend))
AUDIO_BACKENDS.register("resemblyzer")(AudioBackend(256, SR, _resemblyzer_backend))
AUDIO_BACKENDS.register("aisfx")(AudioBackend(512, 44100, _aisfx_backend))


def _frame_windows(centres: np.ndarray, window: float, rate: float, n: int) -> list[tuple[int, int]]:
    """Index ranges [a, b) of analysis frames (at `rate` per second) for windows around each centre."""
    out = []
    for c in centres:
        a = int(np.floor((c - window / 2) * rate))
        b = int(np.ceil((c + window / 2) * rate))
        a, b = max(0, min(a, n - 1)), max(1, min(b, n))
        out.append((a, max(a + 1, b)))
    return out


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
        for i, (a, b) in enumerate(_frame_windows(centres, window, SR / HOP, len(rms))):
            extra[i, 0] = 20 * np.log10(np.sqrt(np.mean(rms[a:b] ** 2)) + 1e-6) / 100.0
        for i, (a, b) in enumerate(_frame_windows(centres, window, SR / _VAD_CHUNK, len(probs))):
            extra[i, 1] = probs[a:b].mean()
            extra[i, 2] = (probs[a:b] > 0.5).mean()
        # Steps whose window lies past the end of the decoded audio have no evidence.
        covered = centres - window / 2 < len(wave) / SR
        return finish(np.concatenate([emb, extra], axis=1), covered, ctx.valid)
