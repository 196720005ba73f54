"""Sampling of T timesteps per clip: uniform bin centres, or a fixed rate with invalid padding."""

from __future__ import annotations

import numpy as np
import pytest

from perr.features.sampling import Sampling


def test_uniform_centres_cover_the_clip() -> None:
    t, valid = Sampling(T=4).times(10.0, 18.0)
    np.testing.assert_allclose(t, [11.0, 13.0, 15.0, 17.0])
    assert valid.all()


def test_default_is_32_uniform_steps() -> None:
    t, valid = Sampling().times(0.0, 30.0)
    assert t.shape == (32,) and valid.all()
    assert 0 < t[0] < t[-1] < 30.0
    np.testing.assert_allclose(np.diff(t), 30.0 / 32)


def test_fps_truncates_long_clips_and_marks_steps_past_a_short_clip_invalid() -> None:
    s = Sampling(T=6, scheme="fps", fps=2.0)
    t, valid = s.times(5.0, 6.6)  # 1.6 s at 2 fps: steps at 5.25, 5.75, 6.25 fall inside
    np.testing.assert_array_equal(valid, [True, True, True, False, False, False])
    np.testing.assert_allclose(t[:3], [5.25, 5.75, 6.25])
    assert (t[3:] == t[2]).all()  # padding never asks for a frame past the clip
    t, valid = s.times(0.0, 100.0)
    assert valid.all() and t[-1] == pytest.approx(2.75)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"T": 0}, "T must be"), ({"scheme": "fps"}, "positive fps"), ({"scheme": "random"}, "scheme must be")],
)
def test_bad_settings_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sampling(**kwargs)


def test_empty_clip_is_an_error() -> None:
    with pytest.raises(ValueError, match="after start"):
        Sampling().times(3.0, 3.0)
