"""Audio embeddings behind one registry (``--audio-backend``): each loads its packaged model lazily and
returns ``embed(wave, centres_s, window_s) -> [T, dim]``.

* ``logmel`` (default, chosen by speed: ~1000× real time on one core): mean and standard deviation over
  the window of 64 log-mel bands → 128 values (librosa's, computed in NumPy: :mod:`perr.features.logmel`).
* ``resemblyzer``: the 256-d voice embedding of the window (resemblyzer's packaged LSTM, 1.6 s partials).
* ``aisfx``: the 512-d general-sound embedding of aiSFX (its packaged CNN, 44.1 kHz mel blocks of
  ~2.3 s centred on each step); the richest and the slowest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from perr.registry import Registry

SR = 16000
HOP = 160  # 10 ms analysis frames
N_MELS = 64

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
    from perr.features.logmel import log_mel  # librosa's log-mel in NumPy, without librosa's import

    def embed(wave: np.ndarray, centres: np.ndarray, window: float) -> np.ndarray:
        S = log_mel(wave, SR, n_fft=400, hop=HOP, n_mels=N_MELS).T  # [frames, 64]
        out = np.zeros((len(centres), 2 * N_MELS), np.float32)
        for i, (a, b) in enumerate(frame_windows(centres, window, SR / HOP, len(S))):
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
        S = librosa.feature.melspectrogram(
            y=wave / peak,
            sr=SAMPLE_RATE,
            n_mels=MEL_BINS,
            norm=1.0,
            fmin=F_MIN,
            fmax=F_MAX,
            htk=True,
            power=2.0,
            hop_length=SPEC_HOP_LENGTH,
            win_length=SPEC_BLOCK_LENGTH,
        )
        S = (np.log10(S * 10000.0 + 1) / 9.457798957824707).T.astype(
            np.float32
        )  # [frames, 96], 'original' norm
        S = np.concatenate([S, np.zeros((n, S.shape[1]), np.float32)])
        c = np.round(centres * rate).astype(int)
        idx = np.clip(c[:, None] - n // 2 + np.arange(n)[None], 0, len(S) - 1)
        with torch.no_grad():
            return model.get_embedding(torch.from_numpy(S[idx])).numpy().astype(np.float32)

    return embed


AUDIO_BACKENDS.register("logmel")(AudioBackend(2 * N_MELS, SR, _logmel_backend))
AUDIO_BACKENDS.register("resemblyzer")(AudioBackend(256, SR, _resemblyzer_backend))
AUDIO_BACKENDS.register("aisfx")(AudioBackend(512, 44100, _aisfx_backend))


def frame_windows(centres: np.ndarray, window: float, rate: float, n: int) -> list[tuple[int, int]]:
    """Index ranges [a, b) of analysis frames (at `rate` per second) for windows around each centre."""
    out = []
    for c in centres:
        a = int(np.floor((c - window / 2) * rate))
        b = int(np.ceil((c + window / 2) * rate))
        a, b = max(0, min(a, n - 1)), max(1, min(b, n))
        out.append((a, max(a + 1, b)))
    return out
