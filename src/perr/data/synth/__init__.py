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
spread over neighbouring steps. A cue lands only where its carrier exists (the person is on screen, a
subtitle is active), so evidence is scattered and sometimes lost. Each modality is a fixed, seeded
random projection of its latent factors (with per-clip identity, topic and nuisance distractors) plus
noise. `difficulty` (default 1.0) scales noise, decoys, glitches and weak clips together.

Streaming: clips are made and written a chunk at a time (memory stays flat whatever `n` is), and every
clip's draws come from its own seeded streams, so any chunk size writes the same bytes.

Modules: :mod:`.config` (what to make), :mod:`.world` (vocabularies, templates, difficulty),
:mod:`.story` (one clip), :mod:`.render` (noise, glitches, projections of a chunk), :mod:`.writer`
(plan, split, stream into the store).
"""

from perr.data.synth.config import (
    DATASET,
    DEFAULT_CHUNK,
    DEFAULT_DIMS,
    GENERATOR_VERSION,
    MANIFEST_NAME,
    STORE_DIRNAME,
    SUMMARY_NAME,
    SynthConfig,
)
from perr.data.synth.world import IOM_RATIOS, TEMPLATES, allocate
from perr.data.synth.writer import (
    SynthData,
    SynthResult,
    assign_splits,
    ensure_synthetic,
    generate,
    summarise,
    write_synthetic,
)

__all__ = [
    "DATASET",
    "DEFAULT_CHUNK",
    "DEFAULT_DIMS",
    "GENERATOR_VERSION",
    "IOM_RATIOS",
    "MANIFEST_NAME",
    "STORE_DIRNAME",
    "SUMMARY_NAME",
    "TEMPLATES",
    "SynthConfig",
    "SynthData",
    "SynthResult",
    "allocate",
    "assign_splits",
    "ensure_synthetic",
    "generate",
    "summarise",
    "write_synthetic",
]
