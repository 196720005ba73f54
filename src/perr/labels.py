"""The PERR label taxonomy: the one place that knows class names, their order and the fine→coarse map.

Paper Table 1 (definitions) and Table 2 (ERATO class ratios). Every other module asks this one for
class lists, so a task is named by its number of classes within a dataset ("5" fine, "3" coarse).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FINE: tuple[str, ...] = ("hostile", "tense", "mild", "intimate", "neutral")
COARSE: tuple[str, ...] = ("negative", "positive", "neutral")
FINE_TO_COARSE: Mapping[str, str] = {
    "hostile": "negative",
    "tense": "negative",
    "mild": "positive",
    "intimate": "positive",
    "neutral": "neutral",
}

#: Paper Table 1, used as annotator hints and in docs.
DEFINITIONS: Mapping[str, str] = {
    "hostile": "Antagonistic relationship, usually in fierce quarrel or even physical conflict.",
    "tense": "Disagree with each other or under argument.",
    "mild": "Heart-warming, pleasant dialogue with smile.",
    "intimate": "Close interactions with an affectionate or loving manner, including intimate physical contact.",
    "neutral": "Neutrality, normal dialogue without emotional disposition.",
}

#: Paper Table 2: ERATO clip counts per fine class (31,182 clips).
ERATO_COUNTS: Mapping[str, int] = {
    "hostile": 1421,
    "tense": 6088,
    "mild": 3969,
    "intimate": 1211,
    "neutral": 18493,
}


def erato_ratios() -> dict[str, float]:
    """Table 2 ratios, in FINE order."""
    total = sum(ERATO_COUNTS.values())
    return {c: ERATO_COUNTS[c] / total for c in FINE}


def to_coarse(label: str) -> str:
    """Map a fine label to its coarse class (KeyError names the unknown label)."""
    try:
        return FINE_TO_COARSE[label]
    except KeyError:
        raise KeyError(f"unknown fine label {label!r}; expected one of {', '.join(FINE)}") from None


@dataclass(frozen=True)
class Task:
    """One classification task over a label column: its classes and an optional map from the stored label.

    `name` is the class count as a string ("5", "3", "7") — the key used in configs and result tables.
    """

    name: str
    classes: tuple[str, ...]
    column: str = "label"
    mapping: Mapping[str, str] | None = field(default=None, compare=False)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def target(self, stored: str) -> str:
        """The class name this task assigns to a stored label value."""
        value = self.mapping[stored] if self.mapping is not None else stored
        if value not in self.classes:
            raise KeyError(f"label {stored!r} is not a class of task {self.name} ({', '.join(self.classes)})")
        return value

    def encode(self, stored: Sequence[str]) -> list[int]:
        """Class indices for stored label values."""
        index = {c: i for i, c in enumerate(self.classes)}
        return [index[self.target(s)] for s in stored]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "classes": list(self.classes),
            "column": self.column,
            "mapping": dict(self.mapping) if self.mapping is not None else None,
        }

    @classmethod
    def from_json(cls, d: Mapping) -> Task:
        return cls(
            name=str(d["name"]),
            classes=tuple(d["classes"]),
            column=d.get("column", "label"),
            mapping=d.get("mapping"),
        )


def perr_tasks() -> dict[str, Task]:
    """The paper's two tasks: 5 fine classes and 3 coarse classes, both read from the fine `label`."""
    return {
        "5": Task("5", FINE),
        "3": Task("3", COARSE, mapping=dict(FINE_TO_COARSE)),
    }
