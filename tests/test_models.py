"""Per-model unit tests for every registered model (the nine Table-3 rows and pair-cross): shapes, masking, batch-permutation equivariance,
loss and backward, attention rows, the timeline, args round trip. Small d, T, B so the file runs fast."""

from __future__ import annotations

import pytest
import torch

from perr.models import ATTENTION, MODELS, ModelArgs, attention_timeline, build_model

DIMS = {"person_a": 9, "person_b": 9, "background": 7, "audio": 5, "text": 4}
M = len(DIMS)
DIMS_NO_TEXT = {k: v for k, v in DIMS.items() if k != "text"}
B, T, C = 4, 6, 5
NAMES = MODELS.names()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls on a loaded 2-core machine (≈5× faster)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _args(name: str, **kw) -> ModelArgs:
    base = dict(n_classes=C, d_model=8, stage2_hidden=6, heads=2, ff_dim=16, dropout=0.1)
    base.update(kw)
    return ModelArgs(name, DIMS, **base)


def _model(name: str, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(_args(name, **kw)).eval()


def _batch(seed: int = 0) -> tuple[dict, dict, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.randn(B, T, d, generator=g) for k, d in DIMS.items()}
    mask = {k: torch.rand(B, T, generator=g) > 0.25 for k in DIMS}
    mask["text"][1] = False  # clip 1 has no subtitles
    mask["audio"][2, 3:] = False  # clip 2 loses audio half way
    for k in DIMS:
        mask[k][0, 0] = False  # clip 0, step 0: nothing present
        mask[k][3] = True
    y = torch.randint(0, C, (B,), generator=g)
    return x, mask, y


def test_registry_holds_table3_rows_in_order() -> None:
    assert NAMES == [
        "lstm",
        "dot",
        "nonlocal",
        "multihead",
        "transformer",
        "smta-dot",
        "smta-nonlocal",
        "smta-multihead",
        "smta-transformer",
        "pair-cross",
    ]
    assert ATTENTION.names() == ["dot", "nonlocal", "multihead", "transformer"]
    with pytest.raises(KeyError, match="unknown model 'smta'"):
        build_model(_args("smta"))


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_output_shapes_and_attention_rows(name: str) -> None:
    model = _model(name)
    x, mask, _ = _batch()
    out = model(x, mask)
    assert out.logits.shape == (B, C)
    assert out.aux_logits.shape == (B, M, C)
    if name == "lstm":
        assert out.attention is None
        with pytest.raises(ValueError, match="no attention"):
            attention_timeline(out, list(DIMS))
        return
    k = M + 1 if name.startswith("smta-") else M
    assert out.attention.shape == (B, T, k, k)
    assert torch.allclose(out.attention.sum(-1), torch.ones(B, T, k), atol=1e-5)
    assert bool((out.attention >= 0).all())
    # a missing modality is not attended to (h̃ always remains a key for smta-*)
    a_text = out.attention[1, :, :, list(DIMS).index("text")]
    assert float(a_text.abs().max()) == 0.0
    tl = attention_timeline(out, list(DIMS))
    assert tl.shape == (B, T, M)
    any_present = torch.stack([mask[k] for k in DIMS], -1).any(-1)
    if name.startswith("smta-"):  # with nothing present all attention goes to h̃: an empty timeline step
        assert torch.allclose(tl.sum(-1), any_present.float(), atol=1e-5)
    else:  # plain attention over the (zero) tokens of an empty step is uniform
        assert torch.allclose(tl.sum(-1), torch.ones(B, T), atol=1e-5)
    assert torch.isfinite(tl).all()


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_masked_values_do_not_matter(name: str) -> None:
    model = _model(name)
    x, mask, y = _batch()
    out = model(x, mask)
    x2 = {k: torch.where(mask[k][..., None], v, torch.randn_like(v) * 100) for k, v in x.items()}
    out2 = model(x2, mask)
    assert torch.allclose(out.logits, out2.logits, atol=1e-5)
    assert torch.allclose(out.aux_logits, out2.aux_logits, atol=1e-5)
    if out.attention is not None:
        assert torch.allclose(out.attention, out2.attention, atol=1e-5)
    # ...but present values do: the test is not vacuous
    x3 = {k: v + 1.0 for k, v in x.items()}
    assert not torch.allclose(model(x3, mask).logits, out.logits, atol=1e-3)
    assert torch.isfinite(model.loss(out, y, mask))


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_fully_masked_modality_contributes_nothing(name: str) -> None:
    """Clip 1 has no subtitles: its outputs equal those of the same model built without a text
    modality at all (same weights for the rest), and its loss skips the text auxiliary term."""
    model = _model(name)
    x, mask, _ = _batch()
    state = model.state_dict()
    small = build_model(ModelArgs.from_json({**_args(name).to_json(), "input_dims": DIMS_NO_TEXT})).eval()
    small.load_state_dict(
        {
            k: state[k][: M - 1] if k.startswith("aux_") or k == "embed" else state[k]
            for k in small.state_dict()
        }
    )
    one = {k: v[1:2] for k, v in x.items()}, {k: v[1:2] for k, v in mask.items()}
    full = model(*one)
    without = small(
        {k: v for k, v in one[0].items() if k != "text"}, {k: v for k, v in one[1].items() if k != "text"}
    )
    assert torch.allclose(full.logits, without.logits, atol=1e-5)
    assert torch.allclose(full.aux_logits[:, : M - 1], without.aux_logits, atol=1e-5)
    y = torch.zeros(1, dtype=torch.long)
    ce = torch.nn.functional.cross_entropy
    expected = ce(full.logits, y) + sum(ce(full.aux_logits[:, i], y) for i in range(M - 1))
    assert torch.allclose(model.loss(full, y, one[1]), expected, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@torch.no_grad()
def test_batch_permutation_equivariance(name: str) -> None:
    model = _model(name)
    x, mask, y = _batch()
    perm = torch.tensor([2, 0, 3, 1])
    out = model(x, mask)
    outp = model({k: v[perm] for k, v in x.items()}, {k: v[perm] for k, v in mask.items()})
    assert torch.allclose(out.logits[perm], outp.logits, atol=1e-5)
    assert torch.allclose(out.aux_logits[perm], outp.aux_logits, atol=1e-5)
    if out.attention is not None:
        assert torch.allclose(out.attention[perm], outp.attention, atol=1e-5)
    lp = model.loss(outp, y[perm], {k: v[perm] for k, v in mask.items()})
    assert torch.allclose(model.loss(out, y, mask), lp, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_loss_backward_reaches_every_parameter(name: str) -> None:
    model = _model(name).train()
    x, mask, y = _batch()
    out = model(x, {k: v.to(torch.uint8) for k, v in mask.items()})  # 0/1 masks work like bool
    loss = model.loss(out, y, mask)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for n, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
    assert any(float(p.grad.abs().sum()) > 0 for p in model.parameters())


def test_loss_is_eq5_with_aux_weight() -> None:
    model = _model("smta-dot", aux_weight=0.5)
    x, mask, y = _batch()
    out = model(x, mask)
    ce = torch.nn.functional.cross_entropy
    per_clip = []
    for b in range(B):
        t = ce(out.logits[b : b + 1], y[b : b + 1])
        for i, k in enumerate(DIMS):
            if bool(mask[k][b].any()):
                t = t + 0.5 * ce(out.aux_logits[b : b + 1, i], y[b : b + 1])
        per_clip.append(t)
    assert torch.allclose(model.loss(out, y, mask), torch.stack(per_clip).mean(), atol=1e-6)
    # no mask = every modality counted
    full = ce(out.logits, y) + 0.5 * sum(ce(out.aux_logits[:, i], y) for i in range(M))
    assert torch.allclose(model.loss(out, y), full, atol=1e-6)


def test_plain_attention_with_every_modality_missing_is_finite() -> None:
    model = _model("transformer")
    x, mask, y = _batch()
    mask = {k: torch.zeros_like(v) for k, v in mask.items()}
    out = model(x, mask)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out.attention).all()
    assert torch.isfinite(model.loss(out, y, mask))


def test_bad_inputs_name_the_modality() -> None:
    model = _model("smta-transformer")
    x, mask, _ = _batch()
    with pytest.raises(ValueError, match="input lacks modality"):
        model({k: v for k, v in x.items() if k != "person_a"}, mask)
    bad = dict(x, audio=torch.randn(B, T, 3))
    with pytest.raises(ValueError, match=r"input\['audio'\] has shape"):
        model(bad, mask)
    with pytest.raises(ValueError, match=r"mask\['text'\] has shape"):
        model(x, dict(mask, text=torch.ones(B, T + 1, dtype=torch.bool)))


def test_model_args_json_round_trip_and_validation() -> None:
    a = _args("smta-multihead")
    b = ModelArgs.from_json(a.to_json())
    assert b == a and list(b.input_dims) == list(DIMS)
    with pytest.raises(ValueError, match="unknown field"):
        ModelArgs.from_json({**a.to_json(), "colour": 1})
    with pytest.raises(ValueError, match="not divisible"):
        _args("multihead", d_model=10, heads=4)
    # checkpoints written before bf16 moved to TrainConfig carry "precision": read back, ignored
    assert ModelArgs.from_json({**a.to_json(), "precision": "float32"}) == a
    # the same args rebuild the same architecture: weights load one to one
    m1, m2 = build_model(a), build_model(b)
    m2.load_state_dict(m1.state_dict())


def test_bf16_autocast_runs_and_returns_float32() -> None:
    model = _model("smta-transformer")
    x, mask, y = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what TrainConfig.bf16 turns on
        out = model(x, mask)
    assert out.logits.dtype == torch.float32 and out.attention.dtype == torch.float32
    assert torch.isfinite(model.loss(out, y, mask))


@pytest.mark.parametrize("shape", [(512, 4, 6, 6), (16, 8, 8), (3, 5)])
def test_masked_softmax_matches_torch_softmax_and_its_gradient(shape: tuple[int, ...]) -> None:
    """masked_softmax moves the key axis first on CPU (speed); values and gradients must be softmax's."""
    from perr.models.attention import masked_softmax

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(*shape, generator=g, dtype=torch.float64)
    valid = torch.rand(*shape, generator=g) > 0.3
    valid[..., 0] = True  # every row keeps a key (callers guarantee it: guard_keys)
    upstream = torch.randn(*shape, generator=g, dtype=torch.float64)
    ours_in = scores.clone().requires_grad_()
    ref_in = scores.clone().requires_grad_()
    ours = masked_softmax(ours_in, valid)
    ref = ref_in.masked_fill(~valid, float("-inf")).softmax(dim=-1)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    assert bool((ours[~valid] == 0).all())
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=0, atol=1e-12)
