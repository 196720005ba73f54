"""MELD (declare-lab, Friends dialogues) → the generic dialogue CSV of `perr.data.dialogue`.

MELD ships three CSVs, `{train,dev,test}_sent_emo.csv`, with columns `Sr No., Utterance, Speaker,
Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime`. Its pitfalls, and
what the conversion does about each:

- `Dialogue_ID` restarts at 0 in every split → the generic `dialogue_id` is `<split>_<Dialogue_ID>`
  (e.g. `dev_12`), so no context is ever shared across splits.
- Some utterance numbers are missing inside dialogues → utterances are ordered by the integer
  `Utterance_ID`, never assumed contiguous (the number is kept as is).
- Curly apostrophes/quotes and, in some MELD releases, cp1252 mojibake (`\\x92`, `â€™`) → normalised
  to plain ASCII quotes by `clean_meld_text` (text and speaker).
- `StartTime`/`EndTime` are `hh:mm:ss,ms` → seconds (float) in `start`/`end`.

Labels: `label` = 7-class emotion, `sentiment` = 3-class sentiment. The class lists below are the one
place that names them (MELD's own emotion order; sentiment sorted).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from perr.errors import PerrError
from perr.labels import Task

#: MELD's 7 emotions, in the order of the MELD repository.
MELD_EMOTIONS: tuple[str, ...] = ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
#: MELD's 3 sentiments.
MELD_SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
#: MELD split file stem → generic split name (MELD "dev" is our "val").
SPLIT_FILES: dict[str, str] = {"train": "train", "dev": "val", "test": "test"}
MELD_COLUMNS = (
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "StartTime",
    "EndTime",
)


def meld_tasks() -> dict[str, Task]:
    """The two MELD tasks: 7-class emotion (column `label`) and 3-class sentiment (column `sentiment`)."""
    return {
        "7": Task("7", MELD_EMOTIONS, column="label"),
        "3": Task("3", MELD_SENTIMENTS, column="sentiment"),
    }


# cp1252 bytes 0x80-0x9F that MELD text carries as C1 control characters, and the curly punctuation.
_CHAR_MAP = str.maketrans(
    {
        "\x91": "'",
        "\x92": "'",
        "\x93": '"',
        "\x94": '"',
        "\x96": "-",
        "\x97": "-",
        "\x85": "...",
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
    }
)
# A UTF-8 lead byte (0xC2-0xF4) followed by continuation bytes (0x80-0xBF), each shown as its cp1252
# (or, for bytes cp1252 leaves undefined, latin-1) character: how `’` becomes `â€™`.
_MOJIBAKE = re.compile("[\u00c2-\u00f4](?:[\u0080-\u00bf]|[\u0152-\u0192\u02c6\u02dc\u2013-\u2122])+")
_SPACES = re.compile(r"\s+")


def _unmojibake(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        raw = bytes(ord(c) if ord(c) < 256 else c.encode("cp1252")[0] for c in text)
        return raw.decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text  # not mojibake after all


def clean_meld_text(s: str) -> str:
    """Undo UTF-8-read-as-cp1252 mojibake (`â€™` → `’`), then map curly/cp1252 punctuation to ASCII
    and collapse whitespace. Other non-ASCII letters (`café`) are kept."""
    return _SPACES.sub(" ", _MOJIBAKE.sub(_unmojibake, s).translate(_CHAR_MAP)).strip()


def parse_time(value: str) -> float:
    """MELD time `hh:mm:ss,ms` (or `.ms`) → seconds. ValueError names the bad value."""
    m = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2})(?:[,.](\d{1,3}))?\s*", value)
    if not m:
        raise ValueError(f"time {value!r} is not hh:mm:ss,ms")
    h, mi, s, ms = m.groups()
    return int(h) * 3600 + int(mi) * 60 + int(s) + (int(ms.ljust(3, "0")) / 1000 if ms else 0.0)


def default_meld_dir() -> Path:
    """Where MELD's CSVs are looked for: `$PERR_MELD_DIR`, else `../shared/data/text/meld/MELD`
    beside the repository (or beside the current directory)."""
    env = os.environ.get("PERR_MELD_DIR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[3]
    for base in (repo, Path.cwd()):
        cand = base.parent / "shared" / "data" / "text" / "meld" / "MELD"
        if cand.is_dir():
            return cand
    return repo.parent / "shared" / "data" / "text" / "meld" / "MELD"


class MeldError(PerrError, ValueError):
    """MELD files that cannot be converted; the message names every bad file, row and field."""


def read_meld(meld_dir: str | os.PathLike) -> list[dict[str, object]]:
    """MELD's three CSVs as generic dialogue rows (see module doc), in split/dialogue/utterance order."""
    meld_dir = Path(meld_dir)
    rows: list[dict[str, object]] = []
    problems: list[str] = []
    for stem, split in SPLIT_FILES.items():
        path = meld_dir / f"{stem}_sent_emo.csv"
        if not path.exists():
            problems.append(
                f"{path}: missing (expected MELD's {', '.join(f'{s}_sent_emo.csv' for s in SPLIT_FILES)})"
            )
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in MELD_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                problems.append(f"{path}: missing column(s) {', '.join(missing)}")
                continue
            for line, r in enumerate(reader, start=2):
                where = f"{path}:{line}"
                try:
                    did, uid = int(r["Dialogue_ID"]), int(r["Utterance_ID"])
                except ValueError:
                    problems.append(
                        f"{where}: Dialogue_ID/Utterance_ID not integers ({r['Dialogue_ID']!r}, {r['Utterance_ID']!r})"
                    )
                    continue
                emotion, sentiment = r["Emotion"].strip().lower(), r["Sentiment"].strip().lower()
                if emotion not in MELD_EMOTIONS:
                    problems.append(
                        f"{where}: Emotion {r['Emotion']!r} not one of {', '.join(MELD_EMOTIONS)}"
                    )
                if sentiment not in MELD_SENTIMENTS:
                    problems.append(
                        f"{where}: Sentiment {r['Sentiment']!r} not one of {', '.join(MELD_SENTIMENTS)}"
                    )
                try:
                    start, end = parse_time(r["StartTime"]), parse_time(r["EndTime"])
                except ValueError as e:
                    problems.append(f"{where}: StartTime/EndTime: {e}")
                    start = end = None
                rows.append(
                    {
                        "dialogue_id": f"{stem}_{did}",
                        "utterance_id": uid,
                        "speaker": clean_meld_text(r["Speaker"]),
                        "text": clean_meld_text(r["Utterance"]),
                        "label": emotion,
                        "sentiment": sentiment,
                        "split": split,
                        "start": start,
                        "end": end,
                        "_order": (list(SPLIT_FILES).index(stem), did, uid),
                    }
                )
    if problems:
        raise MeldError(f"{meld_dir}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    rows.sort(key=lambda r: r["_order"])  # type: ignore[arg-type,return-value]
    for r in rows:
        del r["_order"]
    return rows


__all__ = [
    "MELD_EMOTIONS",
    "MELD_SENTIMENTS",
    "MeldError",
    "clean_meld_text",
    "default_meld_dir",
    "meld_tasks",
    "parse_time",
    "read_meld",
]
