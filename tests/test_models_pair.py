"""pair-cross (perr/models/pair.py): what makes it pair-aware, checked on small tensors.

The shared contract (shapes, masking, equivariance, backward, eq. 5) is in test_models.py, which runs
every registered model; here: masked tails, the A↔B cross path, the listener path, modality dropout,
the dialogue pair (speaker/others), and the model through train → checkpoint → evaluate."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from perr.checkpoint import Checkpoint
from perr.config import load_config
from perr.models import ModelArgs, build_model, pair_roles
from perr.models.balance import modality_dropout
from perr.store import FeatureStore
from perr.train import evaluate, train
from toydata import TINY, make_toy_store

DIMS = {"person_a": 9, "person_b": 9, "background": 7, "audio": 5, "text": 4}
B, T, C = 3, 7, 5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _model(dims=DIMS, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    base = dict(n_classes=C, d_model=8, stage2_hidden=6, heads=2, ff_dim=16, dropout=0.1)
    base.update(kw)
    model = build_model(ModelArgs("pair-cross", dims, **base)).eval()
    with torch.no_grad():  # non-trivial relative biases and embeddings (they start at ~0)
        model.cross.rel_bias.uniform_(-1, 1)
        model.embed.uniform_(-1, 1)
    return model


def _batch(dims=DIMS, t: int = T, seed: int = 0) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.randn(B, t, d, generator=g) for k, d in dims.items()}
    mask = {k: torch.rand(B, t, generator=g) > 0.3 for k in dims}
    for k in dims:
        mask[k][:, 0] = True  # something at the first step of every clip
    return x, mask


def test_roles() -> None:
    assert pair_roles(list(DIMS)) == ("person_a", "person_b")
    assert pair_roles(["speaker", "others", "target"]) == ("speaker", "others")
    assert pair_roles(["person_a", "background", "text"]) is None  # Table 4 "person" dropped one


@torch.no_grad()
def test_fully_masked_tail_changes_nothing() -> None:
    """Clips that end on steps with no evidence: the output equals that of the clip cut before them,
    whatever values the masked steps hold (pooling never falls back on h_T)."""
    model = _model()
    x, mask = _batch()
    tail = 3
    for k in DIMS:
        mask[k][:, -tail:] = False
        x[k][:, -tail:] = torch.randn(B, tail, DIMS[k]) * 50
    full = model(x, mask)
    cut = model({k: v[:, :-tail] for k, v in x.items()}, {k: v[:, :-tail] for k, v in mask.items()})
    assert torch.allclose(full.logits, cut.logits, atol=1e-5)
    assert torch.allclose(full.aux_logits, cut.aux_logits, atol=1e-5)
    assert torch.allclose(full.attention[:, :-tail], cut.attention, atol=1e-5)
    # and the pooled output does read the last valid step: changing it changes the logits
    last = T - tail - 1
    mask["audio"][:, last] = True
    x2 = dict(x, audio=x["audio"].clone())
    x2["audio"][:, last] += 3.0
    assert not torch.allclose(model(x2, mask).logits, model(x, mask).logits, atol=1e-4)


@torch.no_grad()
def test_cross_attention_mixes_a_and_b() -> None:
    """Perturbing B changes A's token after eq. 7 (A attends to B over time); with the cross path
    ablated it does not, and B's perturbation then only reaches A through later layers."""
    model = _model()
    x, mask = _batch()
    mask["person_a"][:] = True
    mask["person_b"][:] = True
    x2 = dict(x, person_b=x["person_b"] + torch.randn_like(x["person_b"]))
    a1 = model.tokens(x, mask)[0][:, :, 0]
    a2 = model.tokens(x2, mask)[0][:, :, 0]
    assert float((a1 - a2).abs().max()) > 1e-3
    # B perturbed only where B is masked: nothing changes (masked values never leak)
    mask_b = dict(mask, person_b=torch.zeros_like(mask["person_b"]))
    mask_b["person_b"][:, :2] = True
    x3 = dict(x, person_b=x["person_b"].clone())
    x3["person_b"][:, 2:] += 10.0
    assert torch.allclose(model.tokens(x, mask_b)[0], model.tokens(x3, mask_b)[0], atol=1e-6)
    model.cross = None  # ablate eq. 7-8
    b1 = model.tokens(x, mask)[0][:, :, 0]
    b2 = model.tokens(x2, mask)[0][:, :, 0]
    assert torch.equal(b1, b2)


@torch.no_grad()
def test_listener_path_reads_the_other_persons_next_step() -> None:
    """Eq. 8: the text token at step t changes when a person's face at t+1 changes (a reaction)."""
    model = _model()
    x, mask = _batch()
    for k in DIMS:
        mask[k][:] = True
    t = 2
    x2 = dict(x, person_b=x["person_b"].clone())
    x2["person_b"][:, t + 1] += 2.0
    text = list(model.order).index("text")
    before = model.tokens(x, mask)[0][:, t, text]
    after = model.tokens(x2, mask)[0][:, t, text]
    assert float((before - after).abs().max()) > 1e-4


def test_dialogue_pair_and_attention_timeline() -> None:
    """MELD-shaped input (speaker/others, one present per step, left padding) runs and the Fig. 7
    timeline puts all weight on the one modality present at each step."""
    from perr.models import attention_timeline

    dims = {"speaker": 6, "others": 6}
    model = _model(dims)
    x, _ = _batch(dims)
    spk = torch.rand(B, T) > 0.5
    spk[:, :2] = False
    oth = ~spk
    oth[:, :2] = False  # left padding: no utterance yet
    out = model(x, {"speaker": spk, "others": oth})
    tl = attention_timeline(out, list(dims))
    assert torch.allclose(tl[:, 2:, 0], spk[:, 2:].float(), atol=1e-5)
    assert torch.isfinite(out.logits).all()


def test_modality_dropout() -> None:
    g = torch.Generator().manual_seed(0)
    present = torch.rand(2000, 4, 5, generator=g) > 0.2
    present[:10] = False
    present[10:20, :, 1:] = False  # clips with a single modality always keep it
    out = modality_dropout(present, 0.4, generator=g)
    assert torch.equal(out & present, out)  # never adds evidence
    clips = present.any(dim=1).any(dim=1)
    assert bool(out.any(dim=1).any(dim=1)[clips].all())  # a clip keeps at least one modality
    assert torch.equal(out[10:20], present[10:20])
    had = present.any(dim=1)
    lost = (had & ~out.any(dim=1)).sum() / had.sum()
    assert 0.3 < float(lost) < 0.45  # ≈ p, a little less because of the rescue
    # whole modalities go: a kept modality keeps all its steps
    kept = out.any(dim=1)
    assert torch.equal(out, present & kept.unsqueeze(1))
    assert torch.equal(modality_dropout(present, 0.0), present)
    # the model draws it only in training
    model = _model(modality_dropout=0.5)
    x, mask = _batch()
    assert torch.equal(model(x, mask).logits, model(x, mask).logits)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_toy_store(tmp_path_factory.mktemp("toy"))


def test_train_checkpoint_round_trip_and_evaluate(store, tmp_path) -> None:
    cfg = load_config(None, [*TINY, "epochs=2", "model=pair-cross", "modality_dropout=0.2", "threads=1"])
    res = train(store, cfg, tmp_path / "r")
    assert res.epochs_run == 2 and "5" in res.metrics
    payload = torch.load(tmp_path / "r" / "best.pt", weights_only=True)
    assert payload["model_args"]["name"] == "pair-cross"
    assert payload["model_args"]["modality_dropout"] == 0.2
    ckpt = Checkpoint.load(tmp_path / "r" / "best.pt")
    model = ckpt.build_model()
    split = FeatureStore(store)["test"]
    x = {m: torch.from_numpy(split.features(m)[:4].astype("float32")) for m in ckpt.modalities}
    mask = {m: torch.from_numpy(split.mask(m)[:4].astype(bool)) for m in ckpt.modalities}
    fresh = build_model(ckpt.model_args)
    fresh.load_state_dict(payload["model_state"])
    with torch.no_grad():
        assert torch.equal(model(x, mask).logits, fresh.eval()(x, mask).logits)
    result = evaluate(tmp_path / "r" / "best.pt", store, out=tmp_path / "eval")
    assert result["metrics"]["5"]["micro_f1"] == pytest.approx(res.metrics["5"]["micro_f1"])
    # a dropped person (Table 4): the model falls back to context-only tokens and still trains
    res2 = train(store, dataclasses.replace(cfg, drop=["person_b"], epochs=1), tmp_path / "drop")
    assert Checkpoint.load(tmp_path / "drop" / "best.pt").modalities == [
        "person_a",
        "background",
        "audio",
        "text",
    ]
    assert "5" in res2.metrics
