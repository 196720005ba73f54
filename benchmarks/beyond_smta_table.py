"""The README's issue-15 table from the JSON of benchmarks/beyond_smta.py (printed as Markdown); seconds
an epoch from benchmarks/epoch_seconds.py where it has measured them.

python benchmarks/beyond_smta_table.py [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

NAMES = {
    "pair-cross": "PairCross (`pair-cross`)",
    "smta-transformer": "SMTA Transformer",
    "lstm": "LSTM",
}
ANCHORS = [
    ("RoBERTa-large (published; fine-tuned)", "62.02", "72.12"),
    ("DAG-ERC (published; past context only, frozen RoBERTa features)", "63.65", "—"),
    ("EmoBERTa (published; RoBERTa-large fine-tuned, past context only)", "64.55", "—"),
    ("LaERC-S (published; LLM, past only)", "69.27", "—"),
]


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def cell(d: dict[str, Any] | None, model: str, task: str, key: str = "weighted_f1") -> str:
    if d is None:
        return "—"
    for r in d.get("rows", []):
        if r["model"] == model and r["task"] == task and not r.get("drop"):
            std = r.get(f"{key}_std")
            n = r["seeds"]
            return f"{100 * r[f'{key}_mean']:.2f}" + (
                f" ± {100 * std:.2f}" if std is not None and n > 1 else " (1 seed)"
            )
    return "—"


def fact(d: dict[str, Any] | None, model: str, task: str, key: str) -> Any:
    return ((d or {}).get("facts", {}).get(f"{model}/task{task}") or {}).get(key)


def epoch_seconds(d: dict[str, Any] | None, comparison: dict[str, Any] | None, model: str, task: str) -> Any:
    """Seconds an epoch from benchmarks/epoch_seconds.py (one run at a time) when measured, else the
    comparison runs' own mean (which shared the cores with other runs)."""
    timed = ((d or {}).get("models") or {}).get(model) or {}
    return timed.get("seconds_per_epoch_median") or fact(comparison, model, task, "seconds_per_epoch_mean")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default="benchmarks/results")
    res = Path(ap.parse_args().results)
    meld = load(res / "beyond_smta_meld.json")
    ft = load(res / "beyond_smta_meld_finetune.json")
    ft3 = load(res / "beyond_smta_meld_finetune_sentiment.json") or ft  # sentiment: its own run (1 epoch)
    syn = load(res / "beyond_smta.SYNTHETIC.json")
    dya = load(res / "beyond_smta_meld_dyadic.json")
    print(
        "| Method | params (MELD / SYNTHETIC) | train s/epoch, MELD 7-cl. / SYNTHETIC | MELD emotion W-F1 | "
        "MELD sentiment W-F1 | SYNTHETIC 5-cl. Micro / Macro-F1 | MELD dyadic emotion / sentiment W-F1 |"
    )
    print("|---|---|---|---|---|---|---|")
    for model in NAMES:
        p_m, p_s = fact(meld, model, "7", "params"), fact(syn, model, "5", "params")
        s_m, s_s = (
            epoch_seconds(load(res / "epoch_seconds.meld.json"), meld, model, "7"),
            epoch_seconds(load(res / "epoch_seconds.SYNTHETIC.json"), syn, model, "5"),
        )
        print(
            f"| {NAMES[model]} | {p_m or '—'} / {p_s or '—'} | "
            f"{f'{s_m:.1f}' if s_m else '—'} / {f'{s_s:.1f}' if s_s else '—'} | "
            f"{cell(meld, model, '7')} | {cell(meld, model, '3')} | "
            f"{cell(syn, model, '5', 'micro_f1')} / {cell(syn, model, '5', 'macro_f1')} | "
            f"{cell(dya, model, '7')} / {cell(dya, model, '3')} |"
        )
    if ft is not None:
        p, s = fact(ft, "pair-cross", "7", "params"), fact(ft, "pair-cross", "7", "seconds_per_epoch_mean")
        print(
            f"| PairCross + fine-tuned MiniLM on the classified utterance (`text_encoder=finetune`) | {p or '—'} / — | "
            f"{f'{s:.0f}' if s else '—'} / — | {cell(ft, 'pair-cross', '7')} | {cell(ft3, 'pair-cross', '3')} | — | — |"
        )
    joint = load(res / "beyond_smta_meld_finetune_sentiment_joint.json")
    if joint is not None:  # sentiment only: on emotion dev the joint head did not gain (dev_checks in ft)
        s = fact(joint, "pair-cross", "3", "seconds_per_epoch_mean")
        print(
            "| … + a joint emotion head for sentiment (`joint_task=7`, eq. 15; bf16) | "
            f"{fact(joint, 'pair-cross', '3', 'params') or '—'} / — | "
            f"{f'{s:.0f}' if s else '—'} (sentiment, 1 thread) / — | — | {cell(joint, 'pair-cross', '3')} | — | — |"
        )
    for name, emo, sen in ANCHORS:
        print(f"| {name} | — | — | {emo} | {sen} | — | — |")


if __name__ == "__main__":
    main()
