"""The one splitter (perr.splits): stratified and group-disjoint, on labels whose counts are known."""

from __future__ import annotations

from collections import Counter

import pytest

from perr.splits import check_fractions, group_split, stratified_split


def test_stratified_takes_the_rounded_share_of_every_class() -> None:
    labels = ["a"] * 50 + ["b"] * 30 + ["c"] * 7
    got = stratified_split(labels, {"test": 0.2, "val": 0.1}, seed=3)
    per = Counter(zip(labels, got, strict=True))
    assert [per[("a", "test")], per[("b", "test")], per[("c", "test")]] == [10, 6, 1]  # round(n * 0.2)
    assert [per[("a", "val")], per[("b", "val")], per[("c", "val")]] == [5, 3, 1]  # round(n * 0.1)
    assert per[("c", "train")] == 5


def test_stratified_is_a_pure_function_of_seed_and_order() -> None:
    labels = [i % 3 for i in range(60)]
    a = stratified_split(labels, {"test": 0.25}, seed=7)
    assert a == stratified_split(labels, {"test": 0.25}, seed=7)
    assert a != stratified_split(labels, {"test": 0.25}, seed=8)
    # a class absent from `classes` is never drawn; the order of `classes` decides the draws
    only = stratified_split(labels, {"test": 0.5}, seed=7, classes=[1])
    assert {lab for lab, s in zip(labels, only, strict=True) if s == "test"} == {1}


def test_group_split_keeps_every_group_in_one_split() -> None:
    groups = [f"d{i % 9}" for i in range(180)]
    got = group_split(groups, {"test": 0.2, "val": 0.1}, seed=1, noun="drama")
    by_group: dict[str, set[str]] = {}
    for g, s in zip(groups, got, strict=True):
        by_group.setdefault(g, set()).add(s)
    assert all(len(v) == 1 for v in by_group.values())
    share = Counter(got)
    assert share["test"] == 40 and share["val"] == 20  # two and one of the nine equal dramas
    with pytest.raises(ValueError, match="needs at least 3 dramas, found 2"):
        group_split(["x", "y"], {"test": 0.2, "val": 0.1}, seed=0, noun="drama")


def test_fractions_that_leave_no_training_data_are_refused() -> None:
    with pytest.raises(ValueError, match="test_fraction \\+ val_fraction < 1"):
        check_fractions(0.6, 0.5)
