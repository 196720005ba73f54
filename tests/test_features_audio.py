"""The audio extractor's backends on a generated clip with known speech: 1 s of silence, espeak-ng
speech, silence to 4 s (ffmpeg muxes it with a test pattern). Speech activity must follow the
speech, every backend must tell a speech window from a silent one, and a clip without an audio
track must give zeros with mask 0."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from conftest import FEATURES_EXTRA, VIDEO_EXTRA, ffmpeg, speech_wav

pytest.importorskip(*VIDEO_EXTRA)
pytest.importorskip(*FEATURES_EXTRA)

from perr.features.base import ClipContext
from perr.features.extractors.audio import AUDIO_BACKENDS, AudioExtractor
from perr.features.sampling import Sampling
from perr.manifest import Clip

pytestmark = pytest.mark.video
T = 8  # steps at 0.25, 0.75, ..., 3.75 s


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClipContext]:
    d = tmp_path_factory.mktemp("audio")
    speech_wav("Where were you last night? Answer me!", d / "s.wav")
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=10",
        "-i",
        str(d / "s.wav"),
        "-t",
        "4",
        "-af",
        "adelay=1000:all=1,apad",
        "-c:v",
        "mpeg4",
        "-c:a",
        "aac",
        "-shortest",
        str(d / "talk.mp4"),
    )
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "4", "-c:v", "mpeg4", str(d / "mute.mp4")
    )
    out = {}
    for name in ("talk", "mute"):
        clip = Clip(clip_id=name, video=f"{name}.mp4", start=0.0, end=4.0)
        out[name] = ClipContext(clip, d, sampling=Sampling(T=T))
    return out


@pytest.mark.parametrize("backend", AUDIO_BACKENDS.names())
def test_backend_follows_the_speech(clips: dict[str, ClipContext], backend: str) -> None:
    ex = AudioExtractor(backend=backend)
    x, m = ex.extract(clips["talk"])
    assert x.shape == (T, AUDIO_BACKENDS.get(backend).dim + 3) and m.all()
    speech = x[:, -1]  # fraction of speech chunks in the window (silero-vad)
    assert speech[0] < 0.2 and speech[3] > 0.5  # 0.25 s: silence; 1.75 s: inside the speech
    emb = x[:, : ex.dim - 3]
    cos = float(emb[0] @ emb[3] / (np.linalg.norm(emb[0]) * np.linalg.norm(emb[3]) + 1e-9))
    assert cos < 0.99, f"{backend}: silence and speech embed alike (cos {cos:.3f})"
    xm, mm = ex.extract(clips["mute"])
    assert not mm.any() and not xm.any()


def test_logmel_in_numpy_equals_librosa_and_spares_its_import(tmp_path) -> None:
    """The default backend's log-mel (perr.features.logmel) equals librosa's on real speech (espeak-ng),
    the real audrey_hardsub track, noise, silence and a clip shorter than one FFT window — and computing
    it never imports librosa (2–5 CPU-s of SciPy and numba start-up in every worker)."""
    import subprocess
    import sys
    import wave

    import librosa

    from conftest import shared_file
    from perr.features.logmel import log_mel
    from perr.video import read_audio

    rng = np.random.default_rng(0)
    with wave.open(str(speech_wav("The relationship is tense tonight.", tmp_path / "speech.wav"))) as w:
        speech = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    waves = {
        "speech": speech,
        "audrey": read_audio(shared_file("video/moviepy/audrey_hardsub.mp4"), 16000),
        "noise": (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32),
        "silence": np.zeros(16000 * 2, np.float32),
        "shorter_than_a_window": rng.standard_normal(100).astype(np.float32),
    }
    for name, y in waves.items():
        with pytest.warns(UserWarning) if len(y) < 400 else contextlib.nullcontext():
            ref = librosa.power_to_db(
                librosa.feature.melspectrogram(y=y, sr=16000, n_fft=400, hop_length=160, n_mels=64), ref=1.0
            )
        got = log_mel(y, 16000, n_fft=400, hop=160, n_mels=64)
        assert got.shape == ref.shape and got.dtype == ref.dtype, name
        np.testing.assert_allclose(got, ref, atol=1e-4, err_msg=name)
    code = (
        "import sys, numpy as np\n"
        "from perr.features.audio_backends import AUDIO_BACKENDS\n"
        "embed = AUDIO_BACKENDS.get('logmel').factory()\n"
        "x = embed(np.zeros(16000, np.float32), np.array([0.5]), 1.0)\n"
        "assert x.shape == (1, 128)\n"
        "print('librosa' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
