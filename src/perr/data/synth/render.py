"""From latent stories to features, one chunk of clips at a time: per-clip nuisance drifts, latent and
feature noise, extractor glitches, the fixed projections and the masks.

Every random draw of clip i comes from that clip's own stream, `default_rng([seed, 20210, i, 1])` (its
story uses `[seed, 20210, i]`), and the projection multiplies each clip's [T, w] latents on their own
(`np.matmul` over a stack runs one GEMM per clip), so a clip's bytes do not depend on the chunk it was
made in: any chunk size writes the same files. Float32 throughout keeps a chunk small.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from perr.data.synth.config import SynthConfig
from perr.data.synth.world import AUDIO, BACKGROUND, LAYOUTS, PERSON, Knobs
from perr.modalities import PERR_MODALITIES

#: Slow drifts the stories leave at zero: (modality, latent slice, AR(1) rho, scale, added or set).
NUISANCE: tuple[tuple[str, slice, float, float, bool], ...] = (
    ("person_a", PERSON["nuisance"], 0.8, 1.0, False),
    ("person_b", PERSON["nuisance"], 0.8, 1.0, False),
    ("background", BACKGROUND["motion"], 0.6, 1.0, False),
    ("background", BACKGROUND["nuisance"], 0.8, 1.0, False),
    ("audio", AUDIO["loud"], 0.7, 0.3, True),
    ("audio", AUDIO["nuisance"], 0.8, 1.0, False),
)
_NUISANCE_WIDTH = sum(s.stop - s.start for _, s, *_ in NUISANCE)
#: glitch lengths in steps (inclusive range)
GLITCH_STEPS = (2, 6)


def projections(cfg: SynthConfig) -> dict[str, np.ndarray]:
    """Fixed random projection per modality (latent width → feature dim), from `world_seed`; float32."""
    out = {}
    for i, m in enumerate(PERR_MODALITIES):
        rng = np.random.default_rng([cfg.world_seed, 7919, i])
        width = LAYOUTS[m].width
        p = rng.standard_normal((width, int(cfg.dims[m]))) / np.sqrt(width / 4.0)
        out[m] = p.astype(np.float32)
    return out


def clip_noise_rng(cfg: SynthConfig, i: int) -> np.random.Generator:
    """The noise stream of clip i (its story has its own: `[seed, 20210, i]`)."""
    return np.random.default_rng([cfg.seed, 20210, i, 1])


def _ar1(eps: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Unit-variance AR(1) over axis 1 (time) of [c, T, w], one rho per column: drifts, not white noise."""
    x = np.empty_like(eps)
    x[:, 0] = eps[:, 0]
    keep = np.sqrt(1 - rho**2).astype(eps.dtype)
    rho = rho.astype(eps.dtype)
    for t in range(1, eps.shape[1]):
        x[:, t] = rho * x[:, t - 1] + keep * eps[:, t]
    return x


class ChunkNoise:
    """Every random draw of the renderer for clips first … first + c - 1, each clip from its own stream.

    Drawn clip by clip (a few calls per clip) beside the stories in the main thread, so the worker that
    renders and writes runs long NumPy operations and rarely waits for the GIL."""

    def __init__(self, cfg: SynthConfig, knobs: Knobs, first: int, count: int) -> None:
        self.first, self.count = first, count
        m, T = len(PERR_MODALITIES), cfg.T
        self.eps = np.empty((count, T, _NUISANCE_WIDTH), np.float32)
        self.latent = np.empty((count, T, sum(LAYOUTS[k].width for k in PERR_MODALITIES)), np.float32)
        self.feature = np.empty((count, T, sum(int(cfg.dims[k]) for k in PERR_MODALITIES)), np.float32)
        self.glitch = np.empty((count, m), bool)
        self.start = np.empty((count, m), np.int64)
        self.length = np.empty((count, m), np.int64)
        self._cfg, self._knobs = cfg, knobs

    def draw(self, j: int) -> None:
        """The draws of clip first + j, in a fixed order, from its own stream."""
        rng = clip_noise_rng(self._cfg, self.first + j)
        rng.standard_normal(dtype=np.float32, out=self.eps[j])
        rng.standard_normal(dtype=np.float32, out=self.latent[j])
        rng.standard_normal(dtype=np.float32, out=self.feature[j])
        m, T = len(PERR_MODALITIES), self._cfg.T
        self.glitch[j] = rng.random(m) < self._knobs.glitches
        self.start[j] = rng.integers(0, T, size=m)
        self.length[j] = rng.integers(GLITCH_STEPS[0], GLITCH_STEPS[1] + 1, size=m)


def render_chunk(
    cfg: SynthConfig,
    knobs: Knobs,
    proj: Mapping[str, np.ndarray],
    noise: ChunkNoise,
    z: Mapping[str, np.ndarray],
    masks: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Features [c, T, d_m] float32 of the chunk's clips from their latents z[m] [c, T, w_m] (float32,
    changed in place: the nuisance drifts are written into them), masks[m] [c, T] and drawn noise."""
    mods = list(PERR_MODALITIES)
    widths = [LAYOUTS[m].width for m in mods]
    dims = [int(cfg.dims[m]) for m in mods]
    rho = np.concatenate([np.full(s.stop - s.start, r) for _, s, r, *_ in NUISANCE])
    drift = _ar1(noise.eps, rho)
    col = 0
    for m, s, _, scale, add in NUISANCE:
        w = s.stop - s.start
        part = drift[..., col : col + w] * np.float32(scale)
        if add:
            z[m][..., s] += part
        else:
            z[m][..., s] = part
        col += w

    features = {}
    lat_at, feat_at = np.cumsum([0, *widths]), np.cumsum([0, *dims])
    for k, m in enumerate(mods):
        lat = z[m] + np.float32(knobs.latent_noise) * noise.latent[..., lat_at[k] : lat_at[k + 1]]
        eps = noise.feature[..., feat_at[k] : feat_at[k + 1]]
        x = np.matmul(lat, proj[m])  # one GEMM per clip (see the module docstring)
        x += np.float32(knobs.feature_noise) * eps
        # extractor glitches (blur, occlusion, a wrong face, music drowning speech): a stretch of steps whose
        # features are loud noise though the mask says present — where weighing modalities per step pays
        for j in np.flatnonzero(noise.glitch[:, k]):
            s, e = int(noise.start[j, k]), int(noise.start[j, k] + noise.length[j, k])
            x[j, s:e] = 2.0 * eps[j, s:e]
        x *= masks[m][..., None]
        features[m] = x
    return features
