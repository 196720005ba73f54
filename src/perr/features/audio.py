"""`audio`: an embedding of a window of sound around each timestep, plus speech activity.

The clip's audio is decoded once (16 kHz mono) and analysed as a whole; each timestep then takes the
window centred on it, ``max(window, clip duration / T)`` seconds long. Backends (``--audio-backend``):

* ``logmel`` (default, chosen by speed: ~1000× real time on one core): mean and standard deviation
  over the window of 64 librosa log-mel bands → 128 values.
* ``resemblyzer``: the 256-d voice embedding of the window (resemblyzer's packaged LSTM, 1.6 s
  partials); who is speaking and how, ~10–50× real time on CPU.

Every backend appends three speech/energy values: loudness (RMS, dBFS / 100), mean speech
probability and the fraction of speech chunks (> 0.5) from silero-vad (packaged ONNX model).
A clip without an audio track gets zeros and mask 0 at every step; silent windows are real evidence
(mask 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from perr.features.base import EXTRACTORS, ClipContext, Extractor, finish
from perr.registry import Registry

SR = 16000
HOP = 160  # 10 ms analysis frames
N_MELS = 64
_VAD_CHUNK = 512  # silero-vad's chunk at 16 kHz (32 ms)

#: name -> (dim, factory returning embed(wave, centres_s, window_s) -> [T, dim])
AUDIO_BACKENDS: Registry[tuple[int, Callable[[], Callable[[np.ndarray, np.ndarray, float], np.ndarray]]]] = Registry(
    "audio backend"
)


def _logmel_backend() -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
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


def _resemblyzer_backend() -> Callable[[np.ndarray, np.ndarray, float], np.ndarray]:
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


AUDIO_BACKENDS.register("logmel")((2 * N_MELS, _logmel_backend))
AUDIO_BACKENDS.register("resemblyzer")((256, _resemblyzer_backend))


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
        self._dim, self._factory = AUDIO_BACKENDS.get(backend)
        self._embed: Callable[[np.ndarray, np.ndarray, float], np.ndarray] | None = None
        self._vad: SpeechActivity | None = None

    @property
    def dim(self) -> int:
        return self._dim + 3

    @property
    def extractor_id(self) -> str:
        return f"audio:{self.backend}+silero-vad"

    def extract(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        wave = ctx.audio
        if wave is None or len(wave) < SR // 10:
            return self.empty(ctx.T)
        if self._embed is None:
            self._embed = self._factory()
            self._vad = SpeechActivity()
        assert self._vad is not None
        centres = ctx.times - ctx.start
        window = max(self.window, (ctx.end - ctx.start) / ctx.T)
        emb = self._embed(wave, centres, window)
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
