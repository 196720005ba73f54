"""The synthetic world: what a story is made of (vocabularies, latent layouts per modality, the
decisive-moment templates per class, weak scene/music priors), the dramas, and what `difficulty` turns
(the fixed projections from latents to features are in :mod:`.render`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: Paper §3.3, Fig. 3: interaction mode of the pair by Intersection over Minimum of their time on screen.
IOM_RATIOS: Mapping[str, float] = {"iom=0": 0.0981, "0<iom<1": 0.3787, "iom=1": 0.5232}
#: Paper §3.3, Fig. 2(d): clips without any dialogue.
NO_SUBTITLE_RATIO = 0.047
DURATION_RANGE = (5.0, 35.0)
LONG_RANGE = (27.0, 35.0)  # "most of the clips last 27 to 35 seconds"
LONG_SHARE = 0.55  # the rest skew short so the mean is ≈ 23.5 s

FACES = ("neutral", "happy", "sad", "angry", "tender", "afraid")
POSES = ("still", "lean_in", "gesture", "turn_away")
TONES = ("neutral", "warm", "cheerful", "argue", "insult", "loving", "threat")
SCENES = ("home", "office", "street", "restaurant", "bedroom", "car", "park", "hospital")
MUSIC = ("none", "calm", "tense", "romantic")
SPEAKERS = ("a", "b", "other")
GENRES = ("romance", "family", "crime", "comedy", "workplace")


class Layout:
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


PERSON = Layout(face=len(FACES), pose=len(POSES), relpos=3, identity=8, nuisance=6)
BACKGROUND = Layout(scene=len(SCENES), lighting=1, motion=3, style=6, nuisance=4)
AUDIO = Layout(loud=1, arousal=1, voice=1, speaker=len(SPEAKERS), music=len(MUSIC), nuisance=4)
TEXT = Layout(tone=len(TONES), topic=10, position=1)
LAYOUTS: Mapping[str, Layout] = {
    "person_a": PERSON,
    "person_b": PERSON,
    "background": BACKGROUND,
    "audio": AUDIO,
    "text": TEXT,
}


@dataclass(frozen=True)
class StoryCue:
    """One piece of a decisive moment: at step `offset` after the moment starts, `role` ("x"/"y", the
    two persons in random order; "" for the scene) shows `value` through channel `kind`."""

    offset: int
    kind: str  # face | pose | close | tone | loud
    role: str
    value: str | float


def _c(offset: int, kind: str, role: str, value: str | float) -> StoryCue:
    return StoryCue(offset, kind, role, value)


#: Decisive moments per class. Single cues are shared across classes on purpose (a sad face occurs in
#: tense, mild and intimate moments; angry faces in hostile and tense); only their combination — across
#: the two persons, modalities and neighbouring steps — identifies the class.
TEMPLATES: Mapping[str, tuple[tuple[StoryCue, ...], ...]] = {
    "hostile": (
        (
            _c(0, "face", "x", "angry"),
            _c(0, "face", "y", "angry"),
            _c(0, "loud", "", 2.0),
            _c(1, "tone", "x", "insult"),
            _c(1, "pose", "x", "gesture"),
        ),
        (
            _c(0, "face", "x", "angry"),
            _c(0, "tone", "x", "threat"),
            _c(1, "face", "y", "afraid"),
            _c(1, "loud", "", 1.5),
            _c(1, "pose", "y", "turn_away"),
        ),
        (
            _c(0, "face", "x", "angry"),
            _c(0, "face", "y", "angry"),
            _c(0, "close", "", 1.0),
            _c(0, "pose", "x", "gesture"),
            _c(0, "loud", "", 2.0),
        ),
        (
            _c(0, "tone", "x", "argue"),
            _c(0, "loud", "", 2.0),
            _c(1, "tone", "y", "argue"),
            _c(1, "loud", "", 2.0),
            _c(1, "face", "y", "angry"),
        ),  # a shouting match: argument made hostile by loudness
    ),
    "tense": (
        (
            _c(0, "face", "x", "angry"),
            _c(0, "tone", "x", "argue"),
            _c(1, "face", "y", "sad"),
            _c(1, "loud", "", 0.8),
        ),
        (_c(0, "face", "x", "sad"), _c(1, "tone", "y", "argue"), _c(1, "pose", "x", "turn_away")),
        (
            _c(0, "tone", "x", "warm"),
            _c(1, "face", "y", "angry"),
            _c(1, "pose", "y", "turn_away"),
        ),  # placating, rebuffed
        (_c(0, "face", "x", "happy"), _c(0, "tone", "x", "insult"), _c(1, "face", "y", "angry")),  # sarcasm
    ),
    "mild": (
        (_c(0, "face", "x", "sad"), _c(1, "tone", "y", "warm"), _c(2, "face", "x", "happy")),  # comforted
        (_c(0, "face", "x", "happy"), _c(0, "face", "y", "happy"), _c(0, "tone", "x", "cheerful")),
        (_c(0, "face", "x", "happy"), _c(1, "tone", "y", "warm"), _c(1, "loud", "", -0.6)),
        (_c(0, "tone", "x", "argue"), _c(0, "face", "x", "happy"), _c(1, "face", "y", "happy")),  # banter
    ),
    "intimate": (
        (
            _c(0, "face", "x", "tender"),
            _c(0, "face", "y", "tender"),
            _c(0, "close", "", 1.0),
            _c(0, "loud", "", -1.0),
            _c(0, "pose", "x", "lean_in"),
        ),
        (
            _c(0, "tone", "x", "loving"),
            _c(1, "face", "y", "tender"),
            _c(1, "close", "", 0.0),
            _c(1, "loud", "", -1.0),
        ),
        (
            _c(0, "face", "x", "sad"),
            _c(1, "face", "y", "tender"),
            _c(1, "close", "", 1.0),
            _c(1, "pose", "y", "lean_in"),
            _c(1, "tone", "y", "warm"),
        ),  # a hug to comfort
    ),
    "neutral": (),
}
ALL_CUES: tuple[StoryCue, ...] = tuple(c for ts in TEMPLATES.values() for t in ts for c in t)

#: Weak scene/music priors per class (the paper finds background the least useful modality).
SCENE_PRIOR: Mapping[str, tuple[str, ...]] = {
    "hostile": ("street", "office"),
    "tense": ("office", "home"),
    "mild": ("restaurant", "park"),
    "intimate": ("bedroom", "park"),
    "neutral": ("office", "car"),
}
MUSIC_PRIOR: Mapping[str, str] = {
    "hostile": "tense",
    "tense": "tense",
    "mild": "calm",
    "intimate": "romantic",
    "neutral": "none",
}


def pick(rng: np.random.Generator, values: Sequence[str]) -> str:
    return values[int(rng.integers(len(values)))]


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


def shuffled_assignment(rng: np.random.Generator, n: int, ratios: Mapping[str, float]) -> list[str]:
    counts = allocate(n, ratios)
    values = [k for k, c in counts.items() for _ in range(c)]
    return [values[i] for i in rng.permutation(n)]


# ----------------------------------------------------------------------------------------------- world


@dataclass
class Drama:
    name: str
    genre: str
    episodes: int
    cast: np.ndarray  # [6, identity]
    style: np.ndarray  # [style]


def make_dramas(rng: np.random.Generator, count: int) -> list[Drama]:
    return [
        Drama(
            name=f"synthetic-drama-{i:03d}",
            genre=pick(rng, GENRES),
            episodes=int(rng.integers(1, 5)),
            cast=rng.standard_normal((6, PERSON["identity"].stop - PERSON["identity"].start)),
            style=rng.standard_normal(BACKGROUND["style"].stop - BACKGROUND["style"].start),
        )
        for i in range(count)
    ]


@dataclass
class Knobs:
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
    def of(cls, d: float) -> Knobs:
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
