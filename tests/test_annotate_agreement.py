"""Agreement figures on hand-computed and textbook cases (synthetic annotations)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from perr.annotate import schema
from perr.annotate.agreement import (
    Item,
    agreement_report,
    cohen_pairs,
    fleiss_kappa,
    item_agreement,
    percent_agreement,
    trend,
)
from perr.annotate.records import parse_export
from perr.cli import app

# Fleiss (1971) as reproduced on Wikipedia ("Fleiss' kappa", worked example): 10 subjects, 14 raters,
# 5 categories; P̄ = 0.378, P_e = 0.213, κ = 0.210.
FLEISS_TABLE = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_fleiss_textbook_example() -> None:
    assert fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_edge_cases() -> None:
    assert fleiss_kappa(np.array([[2, 0], [0, 2]])) == pytest.approx(1.0)
    # Everyone always says the same class: chance agreement is 1, kappa undefined.
    assert fleiss_kappa(np.array([[3, 0], [3, 0]])) is None
    # Items with fewer than two ratings do not count.
    assert fleiss_kappa(np.array([[2, 0], [0, 2], [1, 0]])) == pytest.approx(1.0)
    assert fleiss_kappa(np.array([[1, 0]])) is None


def test_item_and_percent_agreement() -> None:
    assert item_agreement(["a"]) is None
    assert item_agreement(["a", "a"]) == 1.0
    assert item_agreement(["a", "a", "b"]) == pytest.approx(1 / 3)  # 1 of 3 pairs
    assert item_agreement(["a", "a", "b", "b"]) == pytest.approx(2 / 6)
    items = [
        Item("1", {"x": "hostile", "y": "tense"}, None),  # fine 0, coarse 1 (both negative)
        Item("2", {"x": "mild", "y": "mild", "z": "neutral"}, None),  # fine 1/3, coarse 1/3
        Item("3", {"x": "intimate"}, None),  # one label: not counted
    ]
    assert percent_agreement(items, "fine") == pytest.approx((0 + 1 / 3) / 2)
    assert percent_agreement(items, "coarse") == pytest.approx((1 + 1 / 3) / 2)


def test_cohen_textbook_example() -> None:
    # Wikipedia "Cohen's kappa": 50 items, yes/yes 20, yes/no 5, no/yes 10, no/no 15 → p_o .7, p_e .5, κ .4.
    pairs = (
        [("hostile", "hostile")] * 20
        + [("hostile", "neutral")] * 5
        + [("neutral", "hostile")] * 10
        + [("neutral", "neutral")] * 15
    )
    items = [Item(str(i), {"1": a, "2": b}, None) for i, (a, b) in enumerate(pairs)]
    (row,) = cohen_pairs(items, {"1": "ann", "2": "bob"})
    assert (row["a"], row["b"], row["n_items"]) == ("ann", "bob", 50)
    assert row["kappa_fine"] == pytest.approx(0.4)
    assert row["percent_fine"] == pytest.approx(0.7)
    # hostile → negative, neutral → neutral: the same table at the coarse scale.
    assert row["kappa_coarse"] == pytest.approx(0.4)


def test_cohen_undefined_is_none() -> None:
    items = [Item("1", {"1": "mild", "2": "mild"}, None), Item("2", {"1": "mild", "2": "mild"}, None)]
    (row,) = cohen_pairs(items)
    assert row["kappa_fine"] is None and row["percent_fine"] == 1.0


def test_trend_by_week_and_window() -> None:
    t0 = datetime(2024, 3, 4, 9)  # a Monday (ISO week 10)
    items = [
        Item("1", {"1": "tense", "2": "hostile"}, t0),  # week 10: fine 0, coarse 1
        Item("2", {"1": "mild", "2": "mild"}, t0 + timedelta(days=2)),  # week 10: 1, 1
        Item("3", {"1": "mild", "2": "neutral"}, t0 + timedelta(days=7)),  # week 11: 0, 0
        Item("4", {"1": "neutral"}, t0 + timedelta(days=8)),  # one label: not in the trend
        Item("5", {"1": "neutral", "2": "neutral"}, None),  # no time: not in the trend
    ]
    weekly = trend(items, "week")
    assert [(r["period"], r["n_items"], r["percent_fine"], r["percent_coarse"]) for r in weekly] == [
        ("2024-W10", 2, 0.5, 1.0),
        ("2024-W11", 1, 0.0, 0.0),
    ]
    windows = trend(items, 2)
    assert [(r["period"], r["n_items"]) for r in windows] == [("items 1-2", 2), ("items 3-3", 1)]
    with pytest.raises(ValueError, match="unknown trend grouping"):
        trend(items, "month")


def _ann(aid: int, who: int, label: str | None, t: str, discard: bool = False) -> dict:
    res = (
        [
            {
                "from_name": schema.DISCARD,
                "to_name": "video",
                "type": "choices",
                "value": {"choices": ["discard"]},
            }
        ]
        if discard
        else [
            {
                "from_name": schema.PAIR,
                "to_name": "video",
                "type": "choices",
                "value": {"choices": ["a", "b"]},
            },
            {"from_name": schema.LABEL, "to_name": "video", "type": "choices", "value": {"choices": [label]}},
        ]
    )
    return {"id": aid, "completed_by": who, "result": res, "was_cancelled": False, "created_at": t}


def test_report_and_cli(tmp_path: Path) -> None:
    t1, t2 = "2024-03-04T10:00:00Z", "2024-03-12T10:00:00Z"
    export = [
        {
            "id": 1,
            "data": {"clip_id": "s1"},
            "annotations": [_ann(1, 1, "tense", t1), _ann(2, 2, "hostile", t1)],
        },
        {"id": 2, "data": {"clip_id": "s2"}, "annotations": [_ann(3, 1, "mild", t2), _ann(4, 2, "mild", t2)]},
        {
            "id": 3,
            "data": {"clip_id": "s3"},
            "annotations": [_ann(5, 1, None, t2, True), _ann(6, 2, "mild", t2)],
        },
    ]
    rep = agreement_report(parse_export(export), {"1": "ann"})
    assert rep["n_items_multi"] == 2 and rep["labels_per_item"] == {"1": 1, "2": 2}
    assert rep["annotators"] == {"1": "ann", "2": "2"}
    assert rep["percent_agreement"] == {"fine": 0.5, "coarse": 1.0}
    assert [t["period"] for t in rep["trend"]] == ["2024-W10", "2024-W11"]

    ex, users, out = tmp_path / "export.json", tmp_path / "users.json", tmp_path / "agr.json"
    ex.write_text(json.dumps(export))
    users.write_text(json.dumps({"1": "ann", "2": "bob"}))
    res = CliRunner().invoke(
        app, ["annotate", "agreement", str(ex), "--users", str(users), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "percent agreement" in res.output and "ann × bob" in res.output
    saved = json.loads(out.read_text())
    assert saved["percent_agreement"] == {"fine": 0.5, "coarse": 1.0}
    assert saved["cohen_kappa"][0]["a"] == "ann"
