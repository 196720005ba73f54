"""The fast models (fused stage 1, attention over all B·T steps, grouped stage 2) equal the literal
step-by-step reference of eq. 1/2 in tests/reference_smta.py: outputs and gradients, float64, ≤ 1e-5."""

from __future__ import annotations

import pytest
import torch

from perr.models import ModelArgs, build_model
from perr.report.paper import TABLE3
from reference_smta import ReferenceModel, to_reference_names

DIMS = {"person_a": 7, "person_b": 6, "background": 5, "audio": 4, "text": 3}
B, T = 3, 5
TOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP barrier stalls on a loaded 2-core machine (≈5× faster)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _inputs(seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.randn(B, T, v, generator=g, dtype=torch.float64) for k, v in DIMS.items()}
    mask = {k: torch.rand(B, T, generator=g) > 0.3 for k in DIMS}
    mask["text"][0] = False  # clip 0 has no subtitles at all (fully masked modality)
    mask["audio"][1, 2:] = False  # partly masked steps
    for k in DIMS:  # clip 2, step 3: every modality missing at once
        mask[k][2, 3] = False
    mask["person_a"][2, 0] = True
    y = torch.randint(0, 5, (B,), generator=g)
    return x, mask, y


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach() - b.detach()).abs().max())


@pytest.mark.parametrize("name", list(TABLE3))  # the SMTA family; pair-cross has no stepwise form
def test_fast_equals_stepwise_reference(name: str) -> None:
    torch.manual_seed(0)
    args = ModelArgs(name, DIMS, n_classes=5, d_model=8, stage2_hidden=6, heads=2, ff_dim=12, dropout=0.1)
    fast = build_model(args).double().eval()
    with torch.no_grad():  # non-trivial values everywhere (e.g. non-zero biases)
        for p in fast.parameters():
            p.uniform_(-0.5, 0.5)
    ref = ReferenceModel(fast).double().eval()

    x, mask, y = _inputs(1)
    xf = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    xr = {k: v.clone().requires_grad_(True) for k, v in x.items()}
    out_f, out_r = fast(xf, mask), ref(xr, mask)

    assert out_f.logits.dtype == out_r.logits.dtype == torch.float64  # compared at float64 precision
    assert _max_diff(out_f.logits, out_r.logits) <= TOL
    assert _max_diff(out_f.aux_logits, out_r.aux_logits) <= TOL
    if out_r.attention is None:
        assert out_f.attention is None
    else:
        assert out_f.attention.shape == out_r.attention.shape
        assert _max_diff(out_f.attention, out_r.attention) <= TOL

    loss_f, loss_r = fast.loss(out_f, y, mask), ref.loss(out_r, y, mask)
    assert abs(float(loss_f.detach()) - float(loss_r.detach())) <= TOL
    # also push gradient through the attention output so its path is checked directly
    extra_f = 0.0 if out_f.attention is None else (out_f.attention**2).sum()
    extra_r = 0.0 if out_r.attention is None else (out_r.attention**2).sum()
    (loss_f + extra_f).backward()
    (loss_r + extra_r).backward()

    for k in DIMS:
        assert _max_diff(xf[k].grad, xr[k].grad) <= TOL, f"input grad {k}"
        masked = ~mask[k]
        assert bool((xf[k].grad[masked] == 0).all())  # masked inputs get no gradient
    fast_grads = to_reference_names(fast, {n: p.grad for n, p in fast.named_parameters()})
    ref_grads = dict(ref.named_parameters())
    assert set(fast_grads) == set(ref_grads)
    for n, gf in fast_grads.items():
        gr = ref_grads[n].grad
        assert gr is not None and gf is not None, n
        assert _max_diff(gf, gr) <= TOL, f"grad of {n}"
    # the check is not vacuous: the gradients are far from zero
    assert max(float(g.abs().max()) for g in fast_grads.values()) > 1e-3


def test_train_speed_benchmark_writes_its_figures(tmp_path) -> None:
    """The speed benchmark runs end to end (tiny sizes) and writes the keys the issue names."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "speed.json"
    repo = Path(__file__).resolve().parents[1]
    args = ["--out", str(out), "--batch", "2", "--steps", "3", "--d", "8", "--threads", "1"]
    cmd = [sys.executable, "-m", "benchmarks.train_speed", *args, "--repeats", "1", "--warmup", "0"]
    subprocess.run(cmd, check=True, cwd=repo)
    res = json.loads(out.read_text())
    for key in (
        "step_ms",
        "reference_step_ms",
        "speedup",
        "epoch_s_erato",
        "kernel_floor_ms",
        "epoch_floor_s_erato",
        "profile",
        "cores",
        "cpu",
        "versions",
        "loadavg",
    ):
        assert key in res, key
    assert res["step_ms"] > 0 and res["reference_step_ms"] > 0
    assert res["speedup"] == pytest.approx(res["reference_step_ms"] / res["step_ms"], rel=0.01)
    # the step as perr train runs it: masks drawn ahead by a helper (a spare core at 1 of 2+ threads)
    assert res["step_ms_train"] > 0 and res["cpu_helpers"]["dropout_masks"] in {"core", "background", None}
    assert res["helpers_gain"] == pytest.approx(res["step_ms"] / res["step_ms_train"], rel=0.01)
    assert res["speedup_train"] == pytest.approx(res["reference_step_ms"] / res["step_ms_train"], rel=0.01)
    assert res["epoch_s_erato"] == pytest.approx(25_000 / 2 * res["step_ms"] / 1e3, rel=0.01)
    assert res["versions"]["torch"] == torch.__version__
    # the kernel floor is part of the profiled step
    assert 0 < res["kernel_floor_ms"] <= res["profile"]["step_ms_profiled"]
    assert res["epoch_floor_s_erato"] == pytest.approx(25_000 / 2 * res["kernel_floor_ms"] / 1e3, rel=0.01)
