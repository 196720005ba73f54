"""Log-mel spectrogram in NumPy, equal to librosa's (``power_to_db(melspectrogram(...), ref=1.0)``).

The default audio backend needs one small spectrogram per clip (≈ 30 ms of CPU for 30 s of audio), but
``import librosa`` pulls SciPy's signal package and compiles numba kernels: 2–5 CPU-s in every worker
process, paid again by every `perr predict`. This module computes the same thing with librosa's defaults
(periodic Hann window, centred frames with zero padding, power 2, Slaney mel scale and area-normalised
filters, 80 dB dynamic range) and NumPy alone. tests/test_features_audio.py checks it against librosa on
real and synthetic audio.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: librosa's Slaney mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    f = np.asanyarray(f, dtype=np.float64)
    mels = f / _F_SP
    log = f >= _MIN_LOG_HZ
    return np.where(log, _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP, mels)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asanyarray(m, dtype=np.float64)
    freqs = _F_SP * m
    log = m >= _MIN_LOG_MEL
    return np.where(log, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), freqs)


@lru_cache(maxsize=8)
def mel_filterbank(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    """[n_mels, 1 + n_fft // 2] float32 triangular filters from 0 Hz to sr/2, Slaney-normalised."""
    fft_freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2.0), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights


@lru_cache(maxsize=8)
def hann(n: int) -> np.ndarray:
    """The periodic Hann window (scipy.signal.get_window('hann', n, fftbins=True))."""
    return 0.5 + 0.5 * np.cos(np.linspace(-np.pi, np.pi, n + 1))[:-1]


def log_mel(wave: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, top_db: float = 80.0) -> np.ndarray:
    """[n_mels, frames] power spectrogram in dB (ref 1.0, floor 1e-10, top_db below the clip's maximum)."""
    y = np.asarray(wave, dtype=np.float32)
    pad = n_fft // 2
    y = np.pad(y, (pad, pad), mode="constant")
    n_frames = 1 + (len(y) - n_fft) // hop
    frames = np.lib.stride_tricks.as_strided(
        y, shape=(n_frames, n_fft), strides=(y.strides[0] * hop, y.strides[0]), writeable=False
    )
    spec = np.fft.rfft(hann(n_fft) * frames, axis=1).astype(np.complex64)  # [frames, bins]
    power = np.abs(spec) ** 2
    mel = mel_filterbank(sr, n_fft, n_mels) @ power.T  # [n_mels, frames]
    db = 10.0 * np.log10(np.maximum(1e-10, mel))
    if top_db is not None and db.size:
        db = np.maximum(db, db.max() - top_db)
    return db
