"""The embedded default dataset: a seeded generator of an ERATO-shaped **synthetic** feature set.

ERATO (Gao et al., ACM MM'21) ships only under a EULA, so `make demo` trains on data made here. Every
output says *synthetic*: the store folder (`synthetic-erato/`), the manifest (`manifest.synthetic.jsonl`),
the summary (`synthetic-erato.summary.json`), the store header (`dataset="synthetic-erato"`,
`synthetic=true`) and each clip id (`synthetic-000123`).

Shape follows the paper's §3.3 statistics: Table 2 class ratios (exact up to rounding), clip lengths
5–35 s (mean ≈ 23.5 s, most 27–35 s), the pair's interaction modes by IoM (=0 9.81 %, (0,1) 37.87 %,
=1 52.32 %, exact up to rounding), 4.7 % of clips without subtitles and a subtitle ratio mostly 50–70 %,
1–25 shots per clip, audio everywhere.

How the label shows (see docs/synthetic.md): each clip has a latent *story* over T steps — per-person
face emotion and pose, who is on screen (per shot), the pair's distance and contact, who speaks and in
what tone, loudness and arousal, music and scene. Background emotions ("decoys") are drawn for every
clip independently of the label, so a sad face or a loud step alone says little. A non-neutral clip
adds a few *decisive moments*, each a joint template over both persons and several modalities, often
spread over neighbouring steps — e.g. a sad face followed by the *other* person's warm words is mild;
the same sad face answered by argument is tense, answered by a hug is intimate; two angry faces plus
loud audio are hostile. A cue lands only where its carrier exists (the person is on screen, a subtitle
is active), so evidence is scattered and sometimes lost. Each modality is a fixed, seeded random
projection of its latent factors (with per-clip identity, topic and nuisance distractors) plus noise.

`difficulty` (default 1.0) scales, together: latent and feature noise, the rate of decoy emotions and
cues, the share of weakly expressed clips, and (inversely) the number of decisive moments.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perr.io import read_json, write_json
from perr.labels import FINE, erato_ratios, to_coarse
from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan, write_manifest
from perr.store import ModalitySpec, StoreHeader, write_split

GENERATOR = "perr.data.synth"
GENERATOR_VERSION = "2"
DATASET = "synthetic-erato"
STORE_DIRNAME = "synthetic-erato"
MANIFEST_NAME = "manifest.synthetic.jsonl"
SUMMARY_NAME = "synthetic-erato.summary.json"

#: Paper §3.3, Fig. 3: interaction mode of the pair by Intersection over Minimum of their time on screen.
IOM_RATIOS: Mapping[str, float] = {"iom=0": 0.0981, "0<iom<1": 0.3787, "iom=1": 0.5232}
#: Paper §3.3, Fig. 2(d): clips without any dialogue.
NO_SUBTITLE_RATIO = 0.047
DURATION_RANGE = (5.0, 35.0)
LONG_RANGE = (27.0, 35.0)  # "most of the clips last 27 to 35 seconds"
LONG_SHARE = 0.55  # the rest skew short so the mean is ≈ 23.5 s
MODALITIES = ("person_a", "person_b", "background", "audio", "text")
DEFAULT_DIMS: Mapping[str, int] = {"person_a": 128, "person_b": 128, "background": 64, "audio": 64, "text": 128}

FACES = ("neutral", "happy", "sad", "angry", "tender", "afraid")
POSES = ("still", "lean_in", "gesture", "turn_away")
TONES = ("neutral", "warm", "cheerful", "argue", "insult", "loving", "threat")
SCENES = ("home", "office", "street", "restaurant", "bedroom", "car", "park", "hospital")
MUSIC = ("none", "calm", "tense", "romantic")
SPEAKERS = ("a", "b", "other")
GENRES = ("romance", "family", "crime", "comedy", "workplace")


class _Layout:
    """Named slices of one modality's latent vector."""

    def __init__(self, **widths: int) -> None:
        self.slices: dict[str, slice] = {}
        start = 0
        for name, w in widths.items():
            self.slices[name] = slice(start, start + w)
            start += w
        self.width = start

    def __getitem__(self, name: str) -> slice:
        return self.slices[name]


PERSON = _Layout(face=len(FACES), pose=len(POSES), relpos=3, identity=8, nuisance=6)
BACKGROUND = _Layout(scene=len(SCENES), lighting=1, motion=3, style=6, nuisance=4)
AUDIO = _Layout(loud=1, arousal=1, voice=1, speaker=len(SPEAKERS), music=len(MUSIC), nuisance=4)
TEXT = _Layout(tone=len(TONES), topic=10, position=1)
LAYOUTS: Mapping[str, _Layout] = {
    "person_a": PERSON, "person_b": PERSON, "background": BACKGROUND, "audio": AUDIO, "text": TEXT,
}


@dataclass(frozen=True)
class Cue:
    """One piece of a decisive moment: at step `offset` after the moment starts, `role` ("x"/"y", the
    two persons in random order; "" for the scene) shows `value` through channel `kind`."""

    offset: int
    kind: str  # face | pose | close | tone | loud
    role: str
    value: str | float


def _c(offset: int, kind: str, role: str, value: str | float) -> Cue:
    return Cue(offset, kind, role, value)


#: Decisive moments per class. Single cues are shared across classes on purpose (a sad face occurs in
#: tense, mild and intimate moments; angry faces in hostile and tense); only their combination — across
#: the two persons, modalities and neighbouring steps — identifies the class.
TEMPLATES: Mapping[str, tuple[tuple[Cue, ...], ...]] = {
    "hostile": (
        (_c(0, "face", "x", "angry"), _c(0, "face", "y", "angry"), _c(0, "loud", "", 2.0),
         _c(1, "tone", "x", "insult"), _c(1, "pose", "x", "gesture")),
        (_c(0, "face", "x", "angry"), _c(0, "tone", "x", "threat"), _c(1, "face", "y", "afraid"),
         _c(1, "loud", "", 1.5), _c(1, "pose", "y", "turn_away")),
        (_c(0, "face", "x", "angry"), _c(0, "face", "y", "angry"), _c(0, "close", "", 1.0),
         _c(0, "pose", "x", "gesture"), _c(0, "loud", "", 2.0)),
        (_c(0, "tone", "x", "argue"), _c(0, "loud", "", 2.0), _c(1, "tone", "y", "argue"), _c(1, "loud", "", 2.0),
         _c(1, "face", "y", "angry")),  # a shouting match: argument made hostile by loudness
    ),
    "tense": (
        (_c(0, "face", "x", "angry"), _c(0, "tone", "x", "argue"), _c(1, "face", "y", "sad"),
         _c(1, "loud", "", 0.8)),
        (_c(0, "face", "x", "sad"), _c(1, "tone", "y", "argue"), _c(1, "pose", "x", "turn_away")),
        (_c(0, "tone", "x", "warm"), _c(1, "face", "y", "angry"), _c(1, "pose", "y", "turn_away")),  # placating, rebuffed
        (_c(0, "face", "x", "happy"), _c(0, "tone", "x", "insult"), _c(1, "face", "y", "angry")),  # sarcasm
    ),
    "mild": (
        (_c(0, "face", "x", "sad"), _c(1, "tone", "y", "warm"), _c(2, "face", "x", "happy")),  # comforted
        (_c(0, "face", "x", "happy"), _c(0, "face", "y", "happy"), _c(0, "tone", "x", "cheerful")),
        (_c(0, "face", "x", "happy"), _c(1, "tone", "y", "warm"), _c(1, "loud", "", -0.6)),
        (_c(0, "tone", "x", "argue"), _c(0, "face", "x", "happy"), _c(1, "face", "y", "happy")),  # banter
    ),
    "intimate": (
        (_c(0, "face", "x", "tender"), _c(0, "face", "y", "tender"), _c(0, "close", "", 1.0),
         _c(0, "loud", "", -1.0), _c(0, "pose", "x", "lean_in")),
        (_c(0, "tone", "x", "loving"), _c(1, "face", "y", "tender"), _c(1, "close", "", 0.0),
         _c(1, "loud", "", -1.0)),
        (_c(0, "face", "x", "sad"), _c(1, "face", "y", "tender"), _c(1, "close", "", 1.0),
         _c(1, "pose", "y", "lean_in"), _c(1, "tone", "y", "warm")),  # a hug to comfort
    ),
    "neutral": (),
}
_ALL_CUES: tuple[Cue, ...] = tuple(c for ts in TEMPLATES.values() for t in ts for c in t)

#: Weak scene/music priors per class (the paper finds background the least useful modality).
_SCENE_PRIOR: Mapping[str, tuple[str, ...]] = {
    "hostile": ("street", "office"), "tense": ("office", "home"), "mild": ("restaurant", "park"),
    "intimate": ("bedroom", "park"), "neutral": ("office", "car"),
}
_MUSIC_PRIOR: Mapping[str, str] = {
    "hostile": "tense", "tense": "tense", "mild": "calm", "intimate": "romantic", "neutral": "none",
}


def extractor_specs(T: int) -> dict[str, ModalitySpec]:
    """The real extractors' ModalitySpecs, from their declarations alone: no model loads, no extra is needed."""
    from perr.features.extract import ExtractConfig, planned_specs

    return {spec.name: spec for spec in planned_specs(ExtractConfig(T=T))}


@dataclass
class SynthConfig:
    """What to generate. Defaults are the demo's size (fast on 2 CPU cores)."""

    n: int = 2000
    T: int = 32
    seed: int = 0
    difficulty: float = 1.0
    dims: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DIMS))
    test_fraction: float = 0.2
    val_fraction: float = 0.0  # of the non-test clips, per class (or per drama)
    split: str = "stratified"  # "stratified" (paper: 20 % of each class) | "drama" (drama-disjoint)
    n_dramas: int = 0  # 0 = about one drama per 40 clips (at least 4)
    world_seed: int = 0  # seeds the fixed projections: same world → comparable features across seeds
    # Lay the synthetic values out like the real extractors (their names, versions and dims), so a model
    # trained here loads on real extracted features: the pipeline runs end to end; the answers mean nothing.
    like_extractors: bool = False

    def __post_init__(self) -> None:
        if self.like_extractors:
            self.dims = {m: s.dim for m, s in extractor_specs(self.T).items()}

    def validate(self) -> None:
        if self.n < 50:
            raise ValueError(f"n = {self.n}: need at least 50 clips for a stratified split of 5 classes")
        if self.T < 8:
            raise ValueError(f"T = {self.T}: need at least 8 time steps")
        if not 0 < self.difficulty <= 5:
            raise ValueError(f"difficulty = {self.difficulty}: choose a value in (0, 5]")
        if not 0 < self.test_fraction < 1 or not 0 <= self.val_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1) and val_fraction in [0, 1)")
        if self.split not in ("stratified", "drama"):
            raise ValueError(f"split = {self.split!r}: choose 'stratified' or 'drama'")
        if set(self.dims) != set(MODALITIES):
            raise ValueError(f"dims must name exactly {', '.join(MODALITIES)}; got {', '.join(self.dims)}")
        bad = {k: v for k, v in self.dims.items() if int(v) < 4}
        if bad:
            raise ValueError(f"dims {bad}: each modality needs at least 4 dims")

    @property
    def drama_count(self) -> int:
        return self.n_dramas or max(4, round(self.n / 40))


@dataclass
class SynthData:
    """Generated arrays (all clips, generation order) and their manifest records."""

    config: SynthConfig
    features: dict[str, np.ndarray]  # [N, T, d_m] float32
    masks: dict[str, np.ndarray]  # [N, T] uint8
    clips: list[Clip]

    @property
    def labels(self) -> list[str]:
        return [c.label or "" for c in self.clips]


# ----------------------------------------------------------------------------------------------- counts


def allocate(n: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder apportionment of n items to ratios: counts sum to n and each is within 1 of n·r."""
    total = sum(ratios.values())
    raw = {k: n * v / total for k, v in ratios.items()}
    counts = {k: int(np.floor(x)) for k, x in raw.items()}
    rest = n - sum(counts.values())
    for k in sorted(raw, key=lambda k: (counts[k] - raw[k], list(raw).index(k)))[:rest]:
        counts[k] += 1
    return counts


def _shuffled_assignment(rng: np.random.Generator, n: int, ratios: Mapping[str, float]) -> list[str]:
    counts = allocate(n, ratios)
    values = [k for k, c in counts.items() for _ in range(c)]
    return [values[i] for i in rng.permutation(n)]


# ----------------------------------------------------------------------------------------------- world


@dataclass
class _Drama:
    name: str
    genre: str
    episodes: int
    cast: np.ndarray  # [6, identity]
    style: np.ndarray  # [style]


def _projections(cfg: SynthConfig) -> dict[str, np.ndarray]:
    """Fixed random projection per modality (latent width → feature dim), from `world_seed`."""
    out = {}
    for i, m in enumerate(MODALITIES):
        rng = np.random.default_rng([cfg.world_seed, 7919, i])
        width = LAYOUTS[m].width
        out[m] = rng.standard_normal((width, int(cfg.dims[m]))) / np.sqrt(width / 4.0)
    return out


def _dramas(rng: np.random.Generator, count: int) -> list[_Drama]:
    return [
        _Drama(
            name=f"synthetic-drama-{i:03d}",
            genre=_pick(rng, GENRES),
            episodes=int(rng.integers(1, 5)),
            cast=rng.standard_normal((6, PERSON["identity"].stop - PERSON["identity"].start)),
            style=rng.standard_normal(BACKGROUND["style"].stop - BACKGROUND["style"].start),
        )
        for i in range(count)
    ]


# ----------------------------------------------------------------------------------------------- story


def _duration(rng: np.random.Generator) -> float:
    if rng.random() < LONG_SHARE:
        return float(rng.uniform(*LONG_RANGE))
    lo, hi = DURATION_RANGE[0], LONG_RANGE[0]
    return float(lo + (hi - lo) * rng.beta(1.0, 1.3))


def _shots(rng: np.random.Generator, T: int, minimum: int) -> np.ndarray:
    """Shot index per step: 1–25 shots (mostly 1–9, paper Fig. 2b), at least `minimum`."""
    k = int(np.clip(1 + rng.poisson(3.0), minimum, min(25, T // 2)))
    cuts = np.sort(rng.choice(np.arange(1, T), size=k - 1, replace=False)) if k > 1 else np.array([], int)
    shot = np.zeros(T, dtype=np.int64)
    for c in cuts:
        shot[c:] += 1
    return shot


_MODE_TYPES: Mapping[str, tuple[str, ...]] = {"iom=0": ("a", "b"), "0<iom<1": ("a", "b", "ab"), "iom=1": ("ab", "x")}


def _presence(rng: np.random.Generator, mode: str, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Who is on screen per step, built shot by shot so the pair's IoM falls in `mode`."""
    minimum = {"iom=0": 2, "0<iom<1": 3, "iom=1": 1}[mode]
    shot = _shots(rng, T, minimum)
    k = int(shot.max()) + 1
    container = "a" if rng.random() < 0.5 else "b"
    while True:
        types = []
        for _ in range(k):
            if rng.random() < 0.08 and k > minimum:
                types.append("")  # a cut-away: neither of the pair on screen
            else:
                t = _pick(rng, _MODE_TYPES[mode])
                types.append(container if t == "x" else t)
        present = set("".join(types))
        if mode == "iom=0" and {"a", "b"} <= present:
            break
        if mode == "iom=1" and "ab" in types:
            break
        if mode == "0<iom<1" and "ab" in types and {"a", "b"} <= {t for t in types if len(t) == 1}:
            break
    pa = np.array(["a" in types[s] for s in shot])
    pb = np.array(["b" in types[s] for s in shot])
    return shot, pa, pb


def _utterances(rng: np.random.Generator, T: int) -> list[tuple[int, int]]:
    """Subtitle events as [start, end) step ranges covering a ratio mostly 50–70 % of the clip."""
    ratio = float(np.clip(rng.normal(0.6, 0.12), 0.15, 0.95))
    spoken = int(np.clip(round(ratio * T), 1, T - 1))
    count = int(np.clip(round(spoken / rng.uniform(2.0, 4.0)), 1, min(spoken, T - spoken + 1)))
    lengths = 1 + rng.multinomial(spoken - count, np.full(count, 1.0 / count))
    silent = T - spoken
    inner = count - 1  # each gap between utterances is ≥ 1 step
    gaps = rng.multinomial(silent - inner, np.full(count + 1, 1.0 / (count + 1)))
    gaps[1:count] += 1
    out, t = [], 0
    for i in range(count):
        t += int(gaps[i])
        out.append((t, t + int(lengths[i])))
        t += int(lengths[i])
    return out


def _segments(rng: np.random.Generator, T: int, lo: int, hi: int) -> list[tuple[int, int]]:
    out, t = [], 0
    while t < T:
        e = min(T, t + int(rng.integers(lo, hi + 1)))
        out.append((t, e))
        t = e
    return out


def _onehot(vocab: Sequence[str], value: str, scale: float = 1.0) -> np.ndarray:
    v = np.zeros(len(vocab))
    v[vocab.index(value)] = scale
    return v


def _stretches(rng: np.random.Generator, n: int, T: int, chance: float, lo: int = 2, hi: int = 6) -> np.ndarray:
    """[n, T] bool: for each row with probability `chance`, one run of lo–hi steps at a random place."""
    has = rng.random(n) < chance
    start = rng.integers(0, T, size=n)
    length = rng.integers(lo, hi + 1, size=n)
    t = np.arange(T)[None, :]
    return has[:, None] & (t >= start[:, None]) & (t < (start + length)[:, None])


def _pick(rng: np.random.Generator, values: Sequence[str]) -> str:
    return values[int(rng.integers(len(values)))]


def _ar1(rng: np.random.Generator, shape: tuple[int, int, int], rho: float = 0.8) -> np.ndarray:
    """Unit-variance AR(1) nuisance over axis 1 (time) of [N, T, width]: slow drifts, not white noise."""
    eps = rng.standard_normal(shape)
    x = np.empty(shape)
    x[:, 0] = eps[:, 0]
    for t in range(1, shape[1]):
        x[:, t] = rho * x[:, t - 1] + np.sqrt(1 - rho**2) * eps[:, t]
    return x


@dataclass
class _Knobs:
    """What `difficulty` turns, in one place."""

    latent_noise: float
    feature_noise: float
    ambient_emotion: float  # chance a background face segment is non-neutral
    ambient_tone: float  # chance an ordinary utterance has an emotional tone
    decoys: float  # mean number of stray single cues per clip
    noises: float  # mean number of loudness events per clip unrelated to the pair
    glitches: float  # chance, per clip and modality, of a stretch of steps whose features are pure noise
    weak_share: float  # share of non-neutral clips expressed at half strength
    extra_moments: float  # chance of each of two extra decisive moments
    scene_prior: float  # chance a shot's scene follows the class prior (music: half that)

    @classmethod
    def of(cls, d: float) -> _Knobs:
        return cls(
            latent_noise=0.09 * d,
            feature_noise=0.15 * d,
            ambient_emotion=min(0.9, 0.09 * d),
            ambient_tone=min(0.9, 0.09 * d),
            decoys=0.45 * d,
            noises=0.3 * d,
            glitches=min(0.9, 0.21 * d),
            weak_share=min(0.9, 0.09 * d),
            extra_moments=float(np.clip(1.0 / d, 0.0, 1.0)),
            scene_prior=float(np.clip(0.2 / d, 0.0, 1.0)),
        )


class _Story:
    """The latent story of one clip: per-step latent factors per modality, masks, and the record."""

    def __init__(self, rng: np.random.Generator, T: int, label: str, mode: str, has_subs: bool,
                 drama: _Drama, knobs: _Knobs) -> None:
        self.rng, self.T, self.label, self.knobs = rng, T, label, knobs
        self.duration = _duration(rng)
        self.shot, pa, pb = _presence(rng, mode, T)
        self.present = {"a": pa, "b": pb}
        self.utts = _utterances(rng, T) if has_subs else []
        self.z = {m: np.zeros((T, LAYOUTS[m].width)) for m in MODALITIES}
        self.speaker: list[str] = [SPEAKERS[int(np.searchsorted([0.42, 0.84], u))] for u in rng.random(len(self.utts))]
        self.tone: list[str] = [self._ambient_tone() for _ in self.utts]
        self.moments: list[dict[str, Any]] = []
        self.strong_utts: dict[int, float] = {}  # utterance → strength, for tones set by a decisive moment
        self._ambient(drama)
        self._evidence()
        self._render_speech()

    # -- background of the story, independent of the label -------------------------------------
    def _ambient_tone(self) -> str:
        if self.rng.random() < self.knobs.ambient_tone:
            return _pick(self.rng, TONES[1:])
        return "neutral"

    def _ambient(self, drama: _Drama) -> None:
        rng, T, k = self.rng, self.T, self.knobs
        cast = rng.choice(len(drama.cast), size=2, replace=False)
        n_shots = int(self.shot.max()) + 1
        side = rng.choice([-1.0, 1.0], size=n_shots) * rng.uniform(0.2, 0.8, size=n_shots)
        dist = rng.uniform(0.35, 1.0, size=n_shots)
        for j, who in enumerate("ab"):
            z = self.z[f"person_{who}"]
            for s, e in _segments(rng, T, 2, 6):
                emo = _pick(rng, FACES[1:]) if rng.random() < k.ambient_emotion else "neutral"
                z[s:e, PERSON["face"]] = _onehot(FACES, emo, rng.uniform(0.4, 1.0))
            for s, e in _segments(rng, T, 2, 8):
                pose = _pick(rng, POSES[1:]) if rng.random() < 0.3 else "still"
                z[s:e, PERSON["pose"]] = _onehot(POSES, pose)
            rel = z[:, PERSON["relpos"]]
            rel[:, 0] = side[self.shot] * (1 if j == 0 else -1)
            rel[:, 1] = np.where(self.present["a"] & self.present["b"], dist[self.shot], 1.0)
            z[:, PERSON["identity"]] = drama.cast[cast[j]]
        bg, au = self.z["background"], self.z["audio"]
        prior = rng.random(n_shots) < k.scene_prior
        scored = rng.random(n_shots) < k.scene_prior / 2  # music follows the story less often than the set
        for s in range(n_shots):
            steps = self.shot == s
            scene = _pick(rng, _SCENE_PRIOR[self.label]) if prior[s] else _pick(rng, SCENES)
            bg[steps, BACKGROUND["scene"]] = _onehot(SCENES, scene)
            bg[steps, BACKGROUND["lighting"]] = rng.uniform(-1, 1)
            music = _MUSIC_PRIOR[self.label] if scored[s] else (MUSIC[0] if rng.random() < 0.55 else _pick(rng, MUSIC[1:]))
            au[steps, AUDIO["music"]] = _onehot(MUSIC, music, 0.7)
        bg[:, BACKGROUND["style"]] = drama.style
        for _ in range(rng.poisson(k.noises)):  # doors, traffic, a music swell, a whisper: loudness without a story
            au[int(rng.integers(T)), AUDIO["loud"]] += rng.choice([-1.0, 1.0], p=[0.3, 0.7]) * rng.uniform(1.0, 2.0)
        for _ in range(rng.poisson(k.decoys)):  # stray cues: the same ingredients, out of combination
            cue = _ALL_CUES[int(rng.integers(len(_ALL_CUES)))]
            roles = {"x": "a", "y": "b"} if rng.random() < 0.5 else {"x": "b", "y": "a"}
            self._apply(Cue(0, cue.kind, cue.role, cue.value), int(rng.integers(T)), roles, rng.uniform(0.6, 1.0))

    # -- the label's evidence -------------------------------------------------------------------
    def _evidence(self) -> None:
        rng, k = self.rng, self.knobs
        templates = TEMPLATES[self.label]
        if not templates:
            return
        strength = 0.5 if rng.random() < k.weak_share else 1.0
        n_moments = 1 + int(rng.binomial(2, k.extra_moments))
        for _ in range(n_moments):
            ti = int(rng.integers(len(templates)))
            roles = {"x": "a", "y": "b"} if rng.random() < 0.5 else {"x": "b", "y": "a"}
            t0 = int(rng.integers(0, self.T - 2))
            landed = [
                self._apply(cue, t0, roles, strength * rng.uniform(0.8, 1.0)) for cue in templates[ti]
            ]
            self.moments.append({
                "template": f"{self.label}-{ti + 1}", "step": t0, "x": roles["x"],
                "cues": len(landed), "landed": int(sum(x is not None for x in landed)),
                "steps": sorted({t for t in landed if t is not None}),
            })

    def _nearest(self, target: int, ok: np.ndarray, window: int = 3) -> int | None:
        for d in range(window + 1):
            for t in (target - d, target + d):
                if 0 <= t < self.T and ok[t]:
                    return t
        return None

    def _apply(self, cue: Cue, t0: int, roles: Mapping[str, str], strength: float) -> int | None:
        """Write one cue near step t0 + offset where its carrier exists; the step used, or None if lost."""
        target = min(self.T - 1, t0 + cue.offset)
        if cue.kind in ("face", "pose"):
            who = roles[cue.role]
            t = self._nearest(target, self.present[who])
            if t is not None:
                z = self.z[f"person_{who}"]
                if cue.kind == "face":
                    z[t, PERSON["face"]] = _onehot(FACES, str(cue.value), 1.2 * strength)
                    if t + 1 < self.T:  # an expression lingers a step
                        z[t + 1, PERSON["face"]] = _onehot(FACES, str(cue.value), 0.6 * strength)
                else:
                    z[t, PERSON["pose"]] = _onehot(POSES, str(cue.value), strength)
            return t
        if cue.kind == "close":
            t = self._nearest(target, self.present["a"] & self.present["b"])
            if t is not None:
                for who in "ab":
                    rel = self.z[f"person_{who}"][t, PERSON["relpos"]]
                    rel[1] = 0.1
                    rel[2] = float(cue.value) * strength
            return t
        if cue.kind == "tone":
            spoken = np.zeros(self.T, dtype=bool)
            owner = np.full(self.T, -1)
            for i, (s, e) in enumerate(self.utts):
                spoken[s:e] = True
                owner[s:e] = i
            t = self._nearest(target, spoken)
            if t is not None:
                i = int(owner[t])
                self.tone[i] = str(cue.value)
                self.speaker[i] = roles[cue.role]
                self.strong_utts[i] = strength
            return t
        if cue.kind == "loud":
            au = self.z["audio"]
            au[target, AUDIO["loud"]] += float(cue.value) * strength
            au[target, AUDIO["arousal"]] += abs(float(cue.value)) * strength * (1 if float(cue.value) > 0 else -0.5)
            return target
        raise ValueError(f"unknown cue kind {cue.kind!r}")

    def _render_speech(self) -> None:
        """Subtitle text latents and the voice/speaker channels of audio, from the utterances."""
        rng = self.rng
        tx, au = self.z["text"], self.z["audio"]
        strong = self.strong_utts
        for i, (s, e) in enumerate(self.utts):
            scale = 1.2 * strong[i] if i in strong else rng.uniform(0.5, 1.0)
            tx[s:e, TEXT["tone"]] = _onehot(TONES, self.tone[i], scale)
            tx[s:e, TEXT["topic"]] = rng.standard_normal(10)
            tx[s:e, TEXT["position"]] = np.linspace(0, 1, e - s)[:, None]
            au[s:e, AUDIO["voice"]] = 1.0
            au[s:e, AUDIO["speaker"]] = _onehot(SPEAKERS, self.speaker[i])
            au[s:e, AUDIO["loud"]] += 0.4

    # -- outputs ---------------------------------------------------------------------------------
    def masks(self) -> dict[str, np.ndarray]:
        text = np.zeros(self.T, dtype=np.uint8)
        for s, e in self.utts:
            text[s:e] = 1
        ones = np.ones(self.T, dtype=np.uint8)
        return {"person_a": self.present["a"].astype(np.uint8), "person_b": self.present["b"].astype(np.uint8),
                "background": ones, "audio": ones.copy(), "text": text}


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) step runs where flags is true."""
    out, start = [], None
    for t, f in enumerate([*list(flags), False]):
        if f and start is None:
            start = t
        elif not f and start is not None:
            out.append((start, t))
            start = None
    return out


def _record(i: int, story: _Story, drama: _Drama, episode: int, start: float, mode: str) -> Clip:
    T = story.T
    bounds = [round(start + story.duration * t / T, 3) for t in range(T + 1)]
    end = bounds[-1]

    def spans(flags: np.ndarray) -> list[TimeSpan]:
        return [TimeSpan(start=bounds[s], end=bounds[e]) for s, e in _runs(flags)]

    characters = [
        Character(id=f"person_{who}", spans=spans(story.present[who]), occurrences=int(story.present[who].sum()))
        for who in "ab"
    ]
    shots = [TimeSpan(start=bounds[s], end=bounds[e]) for s, e in _shot_runs(story.shot)]
    subtitles = [
        SubtitleEvent(start=bounds[s], end=bounds[e], text=f"(synthetic subtitle {j + 1})")
        for j, (s, e) in enumerate(story.utts)
    ]
    return Clip(
        clip_id=f"synthetic-{i:06d}",
        video=f"synthetic://{drama.name}/episode-{episode:02d}",
        drama=drama.name,
        episode=f"{drama.name}/episode-{episode:02d}",
        genre=drama.genre,
        start=round(start, 3),
        end=end,
        shots=shots,
        characters=characters,
        candidates=["person_a", "person_b"],
        pair=("person_a", "person_b"),
        subtitles=subtitles,
        label=story.label,
        status="synthetic",
        extra={"synthetic": True, "T": T, "iom_mode": mode, "moments": story.moments},
    )


def _shot_runs(shot: np.ndarray) -> list[tuple[int, int]]:
    cuts = [0, *[t for t in range(1, len(shot)) if shot[t] != shot[t - 1]], len(shot)]
    return list(itertools.pairwise(cuts))


# ----------------------------------------------------------------------------------------------- API


def generate(cfg: SynthConfig | None = None) -> SynthData:
    """Generate all clips in memory (no files). Deterministic for a given config."""
    cfg = cfg or SynthConfig()
    cfg.validate()
    knobs = _Knobs.of(cfg.difficulty)
    root = np.random.SeedSequence([cfg.seed, 20210])
    plan_rng, noise_rng = (np.random.default_rng(s) for s in root.spawn(2))
    labels = _shuffled_assignment(plan_rng, cfg.n, erato_ratios())
    modes = _shuffled_assignment(plan_rng, cfg.n, IOM_RATIOS)
    silent_flags = _shuffled_assignment(plan_rng, cfg.n, {"silent": NO_SUBTITLE_RATIO, "spoken": 1 - NO_SUBTITLE_RATIO})
    dramas = _dramas(plan_rng, cfg.drama_count)
    which = plan_rng.integers(len(dramas), size=cfg.n)

    T = cfg.T
    z = {m: np.zeros((cfg.n, T, LAYOUTS[m].width)) for m in MODALITIES}
    masks = {m: np.zeros((cfg.n, T), dtype=np.uint8) for m in MODALITIES}
    clips = []
    for i in range(cfg.n):
        rng = np.random.default_rng([cfg.seed, 20210, i])
        drama = dramas[int(which[i])]
        story = _Story(rng, T, labels[i], modes[i], silent_flags[i] == "spoken", drama, knobs)
        for m in MODALITIES:
            z[m][i] = story.z[m]
        for m, v in story.masks().items():
            masks[m][i] = v
        episode = 1 + int(rng.integers(drama.episodes))
        clips.append(_record(i, story, drama, episode, float(rng.uniform(0, 2400)), modes[i]))

    # nuisance drifts, drawn for all clips at once (the stories left these slots at zero)
    for m in ("person_a", "person_b"):
        z[m][..., PERSON["nuisance"]] = _ar1(noise_rng, (cfg.n, T, 6))
    z["background"][..., BACKGROUND["motion"]] = _ar1(noise_rng, (cfg.n, T, 3), 0.6)
    z["background"][..., BACKGROUND["nuisance"]] = _ar1(noise_rng, (cfg.n, T, 4))
    z["audio"][..., AUDIO["loud"]] += 0.3 * _ar1(noise_rng, (cfg.n, T, 1), 0.7)
    z["audio"][..., AUDIO["nuisance"]] = _ar1(noise_rng, (cfg.n, T, 4))
    proj = _projections(cfg)
    features = {}
    for m in MODALITIES:
        lat = z[m] + knobs.latent_noise * noise_rng.standard_normal(z[m].shape)
        x = lat @ proj[m] + knobs.feature_noise * noise_rng.standard_normal((cfg.n, T, int(cfg.dims[m])))
        # extractor glitches (blur, occlusion, a wrong face, music drowning speech): a stretch of steps whose
        # features are loud noise though the mask says present — where weighing modalities per step pays
        glitch = _stretches(noise_rng, cfg.n, T, knobs.glitches)
        x[glitch] = 2.0 * noise_rng.standard_normal((int(glitch.sum()), int(cfg.dims[m])))
        features[m] = (x * masks[m][..., None]).astype(np.float32)
    return SynthData(config=cfg, features=features, masks=masks, clips=clips)


def assign_splits(cfg: SynthConfig, labels: Sequence[str], dramas: Sequence[str]) -> list[str]:
    """Split per clip: the paper's stratified 20 % of each class as test (seeded), or drama-disjoint."""
    rng = np.random.default_rng([cfg.seed, 20210, 99])
    n = len(labels)
    split = ["train"] * n
    if cfg.split == "stratified":
        for c in FINE:
            idx = rng.permutation([i for i in range(n) if labels[i] == c])
            n_test = round(cfg.test_fraction * len(idx))
            n_val = round(cfg.val_fraction * (len(idx) - n_test))
            for i in idx[:n_test]:
                split[i] = "test"
            for i in idx[n_test:n_test + n_val]:
                split[i] = "val"
        return split
    names = sorted(set(dramas))
    order = [names[j] for j in rng.permutation(len(names))]
    size = {d: sum(1 for x in dramas if x == d) for d in names}
    chosen: dict[str, str] = {}
    filled = 0
    for d in order:
        if filled < cfg.test_fraction * n:
            chosen[d] = "test"
            filled += size[d]
    rest = [d for d in order if d not in chosen]
    filled = 0
    for d in rest:
        if filled < cfg.val_fraction * (n - sum(size[x] for x in chosen)):
            chosen[d] = "val"
            filled += size[d]
    return [chosen.get(d, "train") for d in dramas]


def summarize(clips: Sequence[Clip]) -> dict[str, Any]:
    """The §3.3 shape of the generated set, computed from the manifest records."""
    n = len(clips)
    durations = np.array([c.duration or 0.0 for c in clips])
    counts = {c: sum(1 for x in clips if x.label == c) for c in FINE}
    modes = {m: sum(1 for x in clips if x.extra.get("iom_mode") == m) for m in IOM_RATIOS}
    ratios = [sum(s.duration for s in c.subtitles) / (c.duration or 1.0) for c in clips]
    spoken = [r for r in ratios if r > 0]
    return {
        "dataset": DATASET,
        "synthetic": True,
        "clips": n,
        "classes": {c: {"count": counts[c], "ratio": counts[c] / n} for c in FINE},
        "coarse": {k: sum(v for c, v in counts.items() if to_coarse(c) == k) / n for k in ("negative", "positive", "neutral")},
        "duration_s": {
            "min": float(durations.min()), "max": float(durations.max()), "mean": float(durations.mean()),
            "share_27_35": float(np.mean((durations >= 27) & (durations <= 35))),
        },
        "iom_modes": {m: modes[m] / n for m in IOM_RATIOS},
        "no_subtitles": sum(1 for r in ratios if r == 0) / n,
        "subtitle_ratio": {
            "median": float(np.median(spoken)) if spoken else 0.0,
            "share_50_70": float(np.mean([(0.5 <= r <= 0.7) for r in spoken])) if spoken else 0.0,
        },
        "splits": {s: sum(1 for c in clips if c.split == s) for s in ("train", "val", "test")},
    }


@dataclass
class SynthResult:
    store: Path
    manifest: Path
    summary_path: Path
    summary: dict[str, Any]


def write_synthetic(out: str | os.PathLike, cfg: SynthConfig | None = None) -> SynthResult:
    """Generate and write `out/synthetic-erato/{train,val?,test}/`, `out/manifest.synthetic.jsonl` and
    `out/synthetic-erato.summary.json`. Byte-identical for the same config."""
    cfg = cfg or SynthConfig()
    data = generate(cfg)
    out = Path(out)
    (out / SUMMARY_NAME).unlink(missing_ok=True)  # the summary is written last: it marks a complete set
    splits = assign_splits(cfg, data.labels, [c.drama or "" for c in data.clips])
    for clip, s in zip(data.clips, splits, strict=True):
        clip.split = s  # type: ignore[assignment]
    real = extractor_specs(cfg.T) if cfg.like_extractors else {}
    modalities = [
        real[m] if m in real
        else ModalitySpec(name=m, dim=int(cfg.dims[m]), extractor="synthetic-latent-projection", version=GENERATOR_VERSION)
        for m in MODALITIES
    ]
    provenance = {"generator": GENERATOR, "version": GENERATOR_VERSION, "config": asdict(cfg),
                  "note": "SYNTHETIC data shaped like ERATO (paper §3.3); not real video features"
                  + ("; laid out like the real extractors' output (names, versions, dims)" if cfg.like_extractors else "")}
    store = out / STORE_DIRNAME
    for s in ("train", "val", "test"):
        rows = [i for i, x in enumerate(splits) if x == s]
        if not rows:
            if (store / s).exists():  # a stale split from an earlier config
                shutil.rmtree(store / s)
            continue
        header = StoreHeader(modalities=modalities, T=cfg.T, n=len(rows), dataset=DATASET, synthetic=True,
                             provenance={**provenance, "split": s})
        index = [
            {"clip_id": data.clips[i].clip_id, "label": data.clips[i].label, "drama": data.clips[i].drama,
             "episode": data.clips[i].episode, "duration": data.clips[i].duration,
             "iom_mode": data.clips[i].extra["iom_mode"], "synthetic": True}
            for i in rows
        ]
        write_split(store / s, header, {m: data.features[m][rows] for m in MODALITIES},
                    {m: data.masks[m][rows] for m in MODALITIES}, index)
    manifest = write_manifest(out / MANIFEST_NAME, data.clips)
    summary = summarize(data.clips)
    summary["generator"], summary["version"], summary["config"] = GENERATOR, GENERATOR_VERSION, asdict(cfg)
    write_json(out / SUMMARY_NAME, summary)
    return SynthResult(store=store, manifest=manifest, summary_path=out / SUMMARY_NAME, summary=summary)


def ensure_synthetic(out: str | os.PathLike, **options: Any) -> Path:
    """The store root of a synthetic set under `out` (generated unless one with the same config is
    complete there): what `perr demo` and `perr benchmark --dataset synthetic` call."""
    cfg = SynthConfig(**options)
    out = Path(out)
    summary = out / SUMMARY_NAME
    if summary.exists():
        try:
            old = read_json(summary)
            same = old.get("config") == json.loads(json.dumps(asdict(cfg))) and old.get("version") == GENERATOR_VERSION
        except (OSError, ValueError):
            same = False
        if same and (out / STORE_DIRNAME / "train" / "header.json").exists():
            return out / STORE_DIRNAME
    return write_synthetic(out, cfg).store
