"""`person`: what one character of the pair shows at each timestep (paper §5.1 "person-wise").

Computed for both characters of the pair (store modalities ``person_a`` and ``person_b``); the per-clip
work — face detection, identity, expression and pose — runs once for both roles
(:class:`perr.features.person.PersonAnalysis`) and is shared through the clip context's cache.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from perr.features.base import EXTRACTORS, ClipContext, Extractor, finish
from perr.features.config import ExtractConfig
from perr.features.person import PERSON_DIM, PersonAnalysis

ROLES = {"person_a": 0, "person_b": 1}


@EXTRACTORS.register()
class PersonExtractor(Extractor):
    """One role (0 = person_a, 1 = person_b) of the shared :class:`PersonAnalysis`."""

    name = "person"
    version = "1"
    needs_frames = True

    def __init__(self, role: int = 0, analysis: PersonAnalysis | None = None, **kwargs: Any) -> None:
        if role not in (0, 1):
            raise ValueError(f"person role must be 0 (a) or 1 (b), got {role}")
        self.role = role
        self.analysis = analysis or PersonAnalysis(**kwargs)

    @classmethod
    def create(cls, cfg: ExtractConfig, modality: str, shared: dict[str, Any]) -> PersonExtractor:
        if modality not in ROLES:
            raise ValueError(f"the person extractor fills {', '.join(ROLES)}, not {modality!r}")
        if "person" not in shared:
            shared["person"] = PersonAnalysis(cfg.face_detector, cfg.pose, device=shared.get("device", "cpu"))
        return cls(role=ROLES[modality], analysis=shared["person"])

    @property
    def dim(self) -> int:
        return PERSON_DIM

    @property
    def extractor_id(self) -> str:
        p = self.analysis
        return f"person:{p.detector_name}+fer+mediapipe-pose{'' if p.use_pose else '(off)'}"

    def extract(self, ctx: ClipContext) -> tuple[np.ndarray, np.ndarray]:
        key = f"person:{id(self.analysis)}"
        if key not in ctx.cache:
            ctx.cache[key] = self.analysis.run(ctx)
        x, m = ctx.cache[key]
        return finish(x[self.role], m[self.role], ctx.valid)
