"""What one split folder holds (:class:`StoreHeader`: modalities, T, N, tasks, provenance) and the
store's error; the layout is in :mod:`perr.store`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from perr.errors import PerrError
from perr.labels import Task, perr_tasks

FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
#: between a step text's own line and the earlier lines it carries as context (dialogue --target-context)
CONTEXT_SEPARATOR = " | "


@dataclass(frozen=True)
class ModalitySpec:
    """One input modality: its name, width, and the extractor (name, version) that produced it."""

    name: str
    dim: int
    extractor: str = ""
    version: str = ""

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModalitySpec:
        return cls(
            name=d["name"],
            dim=int(d["dim"]),
            extractor=d.get("extractor", ""),
            version=str(d.get("version", "")),
        )


@dataclass
class StoreHeader:
    modalities: list[ModalitySpec]
    T: int
    n: int
    tasks: dict[str, Task] = field(default_factory=perr_tasks)
    dataset: str = ""
    synthetic: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    step_texts: list[str] = field(default_factory=list)  # modalities whose raw step texts are stored

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def dims(self) -> dict[str, int]:
        return {m.name: m.dim for m in self.modalities}

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "dataset": self.dataset,
            "synthetic": self.synthetic,
            "T": self.T,
            "n": self.n,
            "modalities": [asdict(m) for m in self.modalities],
            "tasks": {k: t.to_json() for k, t in self.tasks.items()},
            "provenance": self.provenance,
            **({"step_texts": list(self.step_texts)} if self.step_texts else {}),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StoreHeader:
        return cls(
            modalities=[ModalitySpec.from_json(m) for m in d["modalities"]],
            T=int(d["T"]),
            n=int(d["n"]),
            tasks={k: Task.from_json(t) for k, t in d.get("tasks", {}).items()} or perr_tasks(),
            dataset=d.get("dataset", ""),
            synthetic=bool(d.get("synthetic", False)),
            provenance=dict(d.get("provenance", {})),
            format_version=int(d.get("format_version", FORMAT_VERSION)),
            step_texts=[str(m) for m in d.get("step_texts", [])],
        )

    def feature_signature(self) -> list[dict[str, Any]]:
        """What a checkpoint records and later compares: modality names, dims, extractors, versions."""
        return [asdict(m) for m in self.modalities]


class StoreError(PerrError, ValueError):
    """A store that cannot be used; the message names the file and the field."""
