"""Interval arithmetic shared by the build, the statistics, the features and the generator."""

from perr.intervals import merge_spans, overlap, total_length, true_runs


def test_runs_of_a_flag() -> None:
    assert true_runs([0, 1, 1, 0, 1]) == [(1, 3), (4, 5)]
    assert true_runs([]) == [] and true_runs([1, 1]) == [(0, 2)]


def test_union_length_and_overlap() -> None:
    spans = merge_spans([(5, 6), (0, 2), (1, 3), (4, 4), (3.2, 3.9)], gap=0.25)
    assert spans == [(0, 3.9), (5, 6)]  # (4, 4) is empty; 3 → 3.2 is within the gap
    assert total_length(spans) == 4.9
    assert overlap(spans, [(2, 5.5)]) == 1.9 + 0.5
