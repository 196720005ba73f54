"""What the synthetic generator makes, declared once (defaults, bounds and help feed `perr data synth`),
and the names every output carries: synthetic, always."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from perr.modalities import DEFAULT_SIGNATURE, PERR_MODALITIES
from perr.settings import check_settings, setting

GENERATOR = "perr.data.synth"
#: 3: every clip's noise, drifts and glitches from its own seeded stream (streaming, chunk-independent), float32
GENERATOR_VERSION = "3"
DATASET = "synthetic-erato"
STORE_DIRNAME = "synthetic-erato"
MANIFEST_NAME = "manifest.synthetic.jsonl"
SUMMARY_NAME = "synthetic-erato.summary.json"
DEFAULT_DIMS: Mapping[str, int] = {
    "person_a": 128,
    "person_b": 128,
    "background": 64,
    "audio": 64,
    "text": 128,
}
SPLIT_MODES = ("stratified", "drama")
#: clips generated and written at a time: ~80 MB of float32 features at the extractors' dims (2,421 a step)
DEFAULT_CHUNK = 256


@dataclass
class SynthConfig:
    """What to generate. Defaults are the demo's size (fast on 2 CPU cores)."""

    n: int = setting(2000, "clips to generate", min=50)
    T: int = setting(32, "time steps per clip", min=8, flags=("--T",))
    seed: int = setting(0, "seed of the clips, stories, noise and split")
    difficulty: float = setting(
        1.0,
        "noise, decoy cues and weak clips up; decisive moments down (1 = default; see docs/synthetic.md)",
        min=0.05,
        max=5.0,
    )
    dims: dict[str, int] = setting(
        help="feature dim per modality", cli=False, default_factory=lambda: dict(DEFAULT_DIMS)
    )
    test_fraction: float = setting(
        0.2, "share of each class (or of the clips, by drama) in test/", min=0.01, max=0.9
    )
    val_fraction: float = setting(
        0.0, "share of each class (or of the clips, by drama) in val/", min=0.0, max=0.9
    )
    split: str = setting(
        "stratified",
        "stratified (paper: 20% of each class as test) | drama (drama-disjoint)",
        choices=SPLIT_MODES,
    )
    n_dramas: int = setting(0, "dramas (0 = about one per 40 clips, at least 4)", min=0)
    world_seed: int = setting(
        0, "seed of the fixed per-modality projections (same world: comparable features)"
    )
    like_extractors: bool = setting(
        False,
        "lay values out like the real extractors (their names, versions and dims; overrides dims), so "
        "models trained here load on real features (`perr predict`); values stay synthetic",
    )

    def __post_init__(self) -> None:
        if self.like_extractors:
            self.dims = {s.name: s.dim for s in DEFAULT_SIGNATURE}

    def validate(self) -> None:
        check_settings(self)
        if self.test_fraction + self.val_fraction >= 1:
            raise ValueError(
                f"test_fraction {self.test_fraction} + val_fraction {self.val_fraction} leaves no train clips"
            )
        if set(self.dims) != set(PERR_MODALITIES):
            raise ValueError(
                f"dims must name exactly {', '.join(PERR_MODALITIES)}; got {', '.join(self.dims)}"
            )
        bad = {k: v for k, v in self.dims.items() if int(v) < 4}
        if bad:
            raise ValueError(f"dims {bad}: each modality needs at least 4 dims")

    @property
    def drama_count(self) -> int:
        return self.n_dramas or max(4, round(self.n / 40))
