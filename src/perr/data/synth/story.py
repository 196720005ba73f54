"""One synthetic clip's latent story over T steps — who is on screen per shot, who speaks and how, the
decisive moments of its label over label-independent decoys — and its manifest record."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from perr.data.synth.world import (
    ALL_CUES,
    AUDIO,
    BACKGROUND,
    DURATION_RANGE,
    FACES,
    LAYOUTS,
    LONG_RANGE,
    LONG_SHARE,
    MUSIC,
    MUSIC_PRIOR,
    PERSON,
    POSES,
    SCENE_PRIOR,
    SCENES,
    SPEAKERS,
    TEMPLATES,
    TEXT,
    TONES,
    Drama,
    Knobs,
    StoryCue,
    pick,
)
from perr.intervals import true_runs
from perr.manifest import Character, Clip, SubtitleEvent, TimeSpan
from perr.modalities import PERR_MODALITIES


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


_MODE_TYPES: Mapping[str, tuple[str, ...]] = {
    "iom=0": ("a", "b"),
    "0<iom<1": ("a", "b", "ab"),
    "iom=1": ("ab", "x"),
}


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
                t = pick(rng, _MODE_TYPES[mode])
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


class Story:
    """The latent story of one clip: per-step latent factors per modality, masks, and the record."""

    def __init__(
        self,
        rng: np.random.Generator,
        T: int,
        label: str,
        mode: str,
        has_subs: bool,
        drama: Drama,
        knobs: Knobs,
    ) -> None:
        self.rng, self.T, self.label, self.knobs = rng, T, label, knobs
        self.duration = _duration(rng)
        self.shot, pa, pb = _presence(rng, mode, T)
        self.present = {"a": pa, "b": pb}
        self.utts = _utterances(rng, T) if has_subs else []
        self.z = {m: np.zeros((T, LAYOUTS[m].width), np.float32) for m in PERR_MODALITIES}
        self.speaker: list[str] = [
            SPEAKERS[int(np.searchsorted([0.42, 0.84], u))] for u in rng.random(len(self.utts))
        ]
        self.tone: list[str] = [self._ambient_tone() for _ in self.utts]
        self.moments: list[dict[str, Any]] = []
        self.strong_utts: dict[int, float] = {}  # utterance → strength, for tones set by a decisive moment
        self._ambient(drama)
        self._evidence()
        self._render_speech()

    # -- background of the story, independent of the label -------------------------------------
    def _ambient_tone(self) -> str:
        if self.rng.random() < self.knobs.ambient_tone:
            return pick(self.rng, TONES[1:])
        return "neutral"

    def _ambient(self, drama: Drama) -> None:
        rng, T, k = self.rng, self.T, self.knobs
        cast = rng.choice(len(drama.cast), size=2, replace=False)
        n_shots = int(self.shot.max()) + 1
        side = rng.choice([-1.0, 1.0], size=n_shots) * rng.uniform(0.2, 0.8, size=n_shots)
        dist = rng.uniform(0.35, 1.0, size=n_shots)
        for j, who in enumerate("ab"):
            z = self.z[f"person_{who}"]
            for s, e in _segments(rng, T, 2, 6):
                emo = pick(rng, FACES[1:]) if rng.random() < k.ambient_emotion else "neutral"
                z[s:e, PERSON["face"]] = _onehot(FACES, emo, rng.uniform(0.4, 1.0))
            for s, e in _segments(rng, T, 2, 8):
                pose = pick(rng, POSES[1:]) if rng.random() < 0.3 else "still"
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
            scene = pick(rng, SCENE_PRIOR[self.label]) if prior[s] else pick(rng, SCENES)
            bg[steps, BACKGROUND["scene"]] = _onehot(SCENES, scene)
            bg[steps, BACKGROUND["lighting"]] = rng.uniform(-1, 1)
            music = (
                MUSIC_PRIOR[self.label]
                if scored[s]
                else (MUSIC[0] if rng.random() < 0.55 else pick(rng, MUSIC[1:]))
            )
            au[steps, AUDIO["music"]] = _onehot(MUSIC, music, 0.7)
        bg[:, BACKGROUND["style"]] = drama.style
        for _ in range(
            rng.poisson(k.noises)
        ):  # doors, traffic, a music swell, a whisper: loudness without a story
            au[int(rng.integers(T)), AUDIO["loud"]] += rng.choice([-1.0, 1.0], p=[0.3, 0.7]) * rng.uniform(
                1.0, 2.0
            )
        for _ in range(rng.poisson(k.decoys)):  # stray cues: the same ingredients, out of combination
            cue = ALL_CUES[int(rng.integers(len(ALL_CUES)))]
            roles = {"x": "a", "y": "b"} if rng.random() < 0.5 else {"x": "b", "y": "a"}
            self._apply(
                StoryCue(0, cue.kind, cue.role, cue.value), int(rng.integers(T)), roles, rng.uniform(0.6, 1.0)
            )

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
            landed = [self._apply(cue, t0, roles, strength * rng.uniform(0.8, 1.0)) for cue in templates[ti]]
            self.moments.append(
                {
                    "template": f"{self.label}-{ti + 1}",
                    "step": t0,
                    "x": roles["x"],
                    "cues": len(landed),
                    "landed": int(sum(x is not None for x in landed)),
                    "steps": sorted({t for t in landed if t is not None}),
                }
            )

    def _nearest(self, target: int, ok: np.ndarray, window: int = 3) -> int | None:
        for d in range(window + 1):
            for t in (target - d, target + d):
                if 0 <= t < self.T and ok[t]:
                    return t
        return None

    def _apply(self, cue: StoryCue, t0: int, roles: Mapping[str, str], strength: float) -> int | None:
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
            au[target, AUDIO["arousal"]] += (
                abs(float(cue.value)) * strength * (1 if float(cue.value) > 0 else -0.5)
            )
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
        return {
            "person_a": self.present["a"].astype(np.uint8),
            "person_b": self.present["b"].astype(np.uint8),
            "background": ones,
            "audio": ones.copy(),
            "text": text,
        }


def clip_record(i: int, story: Story, drama: Drama, episode: int, start: float, mode: str) -> Clip:
    T = story.T
    bounds = [round(start + story.duration * t / T, 3) for t in range(T + 1)]
    end = bounds[-1]

    def spans(flags: np.ndarray) -> list[TimeSpan]:
        return [TimeSpan(start=bounds[s], end=bounds[e]) for s, e in true_runs(flags)]

    characters = [
        Character(
            id=f"person_{who}", spans=spans(story.present[who]), occurrences=int(story.present[who].sum())
        )
        for who in "ab"
    ]
    shots = [TimeSpan(start=bounds[s], end=bounds[e]) for s, e in _shottrue_runs(story.shot)]
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


def _shottrue_runs(shot: np.ndarray) -> list[tuple[int, int]]:
    cuts = [0, *[t for t in range(1, len(shot)) if shot[t] != shot[t - 1]], len(shot)]
    return list(itertools.pairwise(cuts))
