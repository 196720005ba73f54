"""`perr data validate`: list every bad row and field of a manifest or a feature store.

Training calls the same checks and refuses bad data with the same messages, so what a user sees
from `validate` is exactly what would have stopped a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from perr.manifest import RowError, parse_manifest
from perr.store import SPLITS
from perr.validation import validate_split


def validate_path(path: str | os.PathLike) -> list[str]:
    """Validate a manifest (.jsonl), a split folder or a store root; return every problem found."""
    path = Path(path)
    if not path.exists():
        return [f"{path}: not found"]
    if path.is_file():
        _clips, errors = parse_manifest(path, check_files=True)
        return [f"{path}: {e}" for e in errors]
    if (path / "header.json").exists():
        return validate_split(path)
    splits = [s for s in SPLITS if (path / s).is_dir()]
    if not splits:
        return [
            f"{path}: neither a manifest (.jsonl) nor a feature store (no header.json, no {'/'.join(SPLITS)} folders)"
        ]
    problems: list[str] = []
    signatures = {}
    for s in splits:
        problems.extend(validate_split(path / s))
        hp = path / s / "header.json"
        if hp.exists():
            try:
                h = json.loads(hp.read_text(encoding="utf-8"))
                signatures[s] = json.dumps([h.get("modalities"), h.get("T")], sort_keys=True)
            except json.JSONDecodeError as e:
                problems.append(f"{hp}: not valid JSON ({e.msg})")
    if len(set(signatures.values())) > 1:
        problems.append(f"{path}: splits disagree on modalities or T: {', '.join(signatures)}")
    return problems


__all__ = ["RowError", "validate_path", "validate_split"]
