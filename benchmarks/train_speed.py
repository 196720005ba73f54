"""Training-step time of SMTA: the fast path (perr.models) vs the literal step-by-step reference.

    python -m benchmarks.train_speed --out runs/train_speed.json [--threads 2,1] [--repeats 7]

One step = forward + eq. 5 loss + backward + Adam step, `smta-transformer` at the paper's settings
(B=16, T=32, d=256, M=5, stage-2 hidden 256, 4 heads, FF 512, dropout 0.1, train mode, float32), on
random features shaped like the real extractors (INPUT_DIMS below) with ~20% of steps missing per
modality and one clip without subtitles. The reference is tests/reference_smta.py (the same one the
equality test proves equal to the fast path): eq. 1 as an `nn.LSTMCell` loop over t, one
`nn.TransformerEncoderLayer` call per step, one `nn.LSTM` per modality; it skips computing A_t (the fast
path returns it), which only favours the reference.

Every variant runs in blocks of `--block` steps, one block of each per round, the order reversed every
other round (`--repeats` rounds) after warm-up; a variant's figure is the median over rounds of its
blocks' medians, so machine load from other jobs hits all alike; the load average before and after is
recorded. (Blocks, not single interleaved steps: a variant whose helper thread draws the next step's
dropout masks must not draw them during another variant's step.) Top-level figures are for the first
`--threads` entry (default: all cores); `by_threads` holds every count. OMP_WAIT_POLICY defaults to PASSIVE here (see below); the JSON records it.
`epoch_s_erato` projects one epoch at ERATO scale: 25,000 training clips / 16 per step × step_ms.
`kernel_floor_ms` is the time a profiled fast-path step spends in the arithmetic kernels that any
implementation must run (oneDNN LSTM, mm/addmm/bmm; KERNEL_OPS), `epoch_floor_s_erato` the same per
epoch; `profile` splits the rest into dropout-mask draws and everything else. `benchmarks/erato_scale.py`
reuses `kernel_profile` for the epoch-vs-floor target.
`step_ms_train` is the fast-path step as `perr train` runs it on a CPU: the same step with the CPU
helpers `perr train` chooses for the device and thread count (perr.train.cpu.CpuHelpers: dropout masks
drawn one step ahead by a helper thread, the M stage-2 LSTMs on two threads); `speedup_train` is
reference / that, and `helpers_gain` is step_ms / step_ms_train (the helpers' own gain; > 1 = faster).
`--no-reference` skips the slow literal reference (the speedups are then null).
bfloat16 autocast (`--set bf16=true`) is timed only where the CPU has native bf16 (avx512_bf16 or
amx_bf16) or on CUDA: `step_ms_bf16` (the plain step) and `step_ms_bf16_train` (masks drawn ahead
and branches on two threads, as perr train runs it), with `speedup_bf16_train`; elsewhere bf16 matmuls are emulated (tens of times
slower) and these are null. Whether bf16 may count for the speed target is an accuracy question:
benchmarks/bf16_vs_fp32.py.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from collections.abc import Callable

# Before torch loads OpenMP: idle OpenMP threads sleep instead of spinning. On a shared, loaded machine
# the default (spin) policy made 2-thread steps ~5x slower than 1 thread; PASSIVE removes most of that.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from tests.reference_smta import ReferenceModel  # the one reference implementation, shared with the tests

from benchmarks.harness import alternate, header, write_result
from perr.models import ModelArgs, build_model
from perr.train import make_optimizer
from perr.train.cpu import CpuHelpers

# person: face-expression embedding + pose + relative position; background: EfficientNet-Lite0 pooled
# (1280); audio: 512-d sound embedding + 3 extras; text: 512-d sentence embedding.
INPUT_DIMS = {"person_a": 1290, "person_b": 1290, "background": 1280, "audio": 515, "text": 512}
ERATO_TRAIN_CLIPS = 25_000


def bf16_native(device: torch.device, flags: list[str]) -> bool:
    return device.type == "cuda" or "avx512_bf16" in flags or "amx_bf16" in flags


def make_batch(b: int, t: int, n_classes: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = {k: torch.randn(b, t, d, generator=g).to(device) for k, d in INPUT_DIMS.items()}
    mask = {k: (torch.rand(b, t, generator=g) > 0.2).to(device) for k in INPUT_DIMS}
    mask["text"][0] = False
    y = torch.randint(0, n_classes, (b,), generator=g).to(device)
    return x, mask, y


def train_step_fn(
    model: torch.nn.Module, x, mask, y, fused_adam: bool, bf16: bool = False
) -> Callable[[], float]:
    """One timed step. The fast path uses perr's optimizer (fused Adam, as `perr train` does); the
    reference keeps torch's default per-parameter Adam loop. `bf16`: the autocast `--set bf16=true` runs."""
    opt = make_optimizer(model, 5e-3) if fused_adam else torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    device_type = x["text"].device.type

    def step() -> float:
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(model(x, mask), y, mask)
        loss.float().backward()
        opt.step()
        if x["text"].device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) * 1e3

    return step


#: The arithmetic every implementation of the model must run: oneDNN/cuDNN LSTM kernels and the matrix
#: products (projections, attention, feed-forward, heads; forward and backward). Their time is the floor.
KERNEL_OPS = (
    "aten::mkldnn_rnn_layer",
    "aten::mkldnn_rnn_layer_backward",
    "aten::_cudnn_rnn",
    "aten::_cudnn_rnn_backward",
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::baddbmm",
)


def kernel_profile(step: Callable[[], object], steps: int = 5, device: torch.device | None = None) -> dict:
    """Profile `steps` calls of `step` (after warm-up) with torch.profiler: per-step wall time, the time in
    KERNEL_OPS (the kernel floor), in dropout-mask draws (bernoulli_) and in everything else."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device is not None and device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    step()
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - t0) * 1e3 / steps

    def own_ms(e) -> float:  # time spent in the op itself (CPU kernels), or on the GPU for CUDA
        t = getattr(e, "self_device_time_total", 0.0) if cuda else e.self_cpu_time_total
        return t / 1e3 / steps

    by_op = {e.key: own_ms(e) for e in prof.key_averages()}
    kernel = {k: round(by_op.get(k, 0.0), 2) for k in KERNEL_OPS if by_op.get(k)}
    floor = sum(kernel.values())
    dropout = by_op.get("aten::bernoulli_", 0.0)
    return {
        "steps": steps,
        "step_ms_profiled": round(wall_ms, 1),
        "kernel_floor_ms": round(floor, 1),
        "kernel_ms": kernel,
        "dropout_masks_ms": round(dropout, 1),
        "other_ms": round(max(0.0, wall_ms - floor - dropout), 1),
        "timer": "CUDA kernel time" if cuda else "self CPU time of each op (calling thread's wall time)",
    }


def as_perr_train(
    step: Callable[[], float], helpers: CpuHelpers, batch: int, stack: contextlib.ExitStack
) -> Callable[[], float]:
    """`step` as perr train runs it on CPU: its model attached to `helpers`, inside `helpers.step`, in an
    epoch long enough for the benchmark (the masks' helper draws the next step's masks while this one
    runs)."""
    stack.callback(helpers.close)
    stack.enter_context(helpers.epoch([batch] * 100_000))

    def run() -> float:
        with helpers.step(batch):
            return step()

    return run


def measure(args: argparse.Namespace, threads: int, device: torch.device, bf16: bool) -> dict[str, object]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    margs = ModelArgs(
        args.model,
        dict(INPUT_DIMS),
        n_classes=5,
        d_model=args.d,
        stage2_hidden=args.d,
        heads=4,
        ff_dim=2 * args.d,
    )
    fast = build_model(margs).to(device)
    x, mask, y = make_batch(args.batch, args.steps, 5, device)
    fns = {"fast": train_step_fn(fast, x, mask, y, fused_adam=True)}
    if args.reference:
        ref = ReferenceModel(fast, need_attention=False).to(device)
        fns["reference"] = train_step_fn(ref, x, mask, y, fused_adam=False)
    if bf16:
        fns["fast_bf16"] = train_step_fn(
            build_model(margs).to(device), x, mask, y, fused_adam=True, bf16=True
        )
    load_before = os.getloadavg()
    chosen = CpuHelpers.choose(device).describe()  # what perr train runs at this thread count
    with contextlib.ExitStack() as stack:
        if chosen["dropout_masks"] is not None or chosen["branches_on_two_threads"]:
            for name in [k for k in fns if k != "reference"]:
                model = build_model(margs).to(device)
                helpers = CpuHelpers.choose(device)
                helpers.attach(model)
                step = train_step_fn(model, x, mask, y, fused_adam=True, bf16=name == "fast_bf16")
                fns[f"{name}_train"] = as_perr_train(step, helpers, args.batch, stack)
        times = alternate(fns, args.repeats, args.block, args.warmup).values
    med = {k: statistics.median(v) for k, v in times.items()}
    train = med.get("fast_train", med["fast"])
    bf16_train = med.get("fast_bf16_train", med.get("fast_bf16"))
    profile = kernel_profile(fns["fast"], args.profile_steps, device) if args.profile_steps > 0 else None
    ref_ms = med.get("reference")
    out: dict[str, object] = {
        "threads": threads,
        "step_ms": round(med["fast"], 2),
        "reference_step_ms": round(ref_ms, 2) if ref_ms else None,
        "speedup": round(ref_ms / med["fast"], 3) if ref_ms else None,
        "step_ms_train": round(train, 2),
        "speedup_train": round(ref_ms / train, 3) if ref_ms else None,
        "helpers_gain": round(med["fast"] / train, 3),
        "cpu_helpers": chosen,
        "step_ms_bf16": round(med["fast_bf16"], 1) if bf16 else None,
        "step_ms_bf16_train": round(bf16_train, 1) if bf16 else None,
        "speedup_bf16_train": round(ref_ms / bf16_train, 3) if bf16 and ref_ms else None,
        "epoch_s_erato": round(ERATO_TRAIN_CLIPS / args.batch * med["fast"] / 1e3, 1),
        "reference_epoch_s_erato": round(ERATO_TRAIN_CLIPS / args.batch * ref_ms / 1e3, 1)
        if ref_ms
        else None,
        "kernel_floor_ms": profile["kernel_floor_ms"] if profile else None,
        "epoch_floor_s_erato": round(ERATO_TRAIN_CLIPS / args.batch * profile["kernel_floor_ms"] / 1e3, 1)
        if profile
        else None,
        "profile": profile,
        "raw_ms": {k: [round(t, 1) for t in v] for k, v in times.items()},
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
    }
    return out


def main(argv: list[str] | None = None) -> dict[str, object]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--model", default="smta-transformer")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=32, help="T, timesteps per clip")
    p.add_argument("--d", type=int, default=256, help="common width d (= stage-2 hidden; FF = 2d)")
    p.add_argument(
        "--threads", default="", help="comma list of torch thread counts (default: all cores, then 1)"
    )
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=6, help="rounds of blocks")
    p.add_argument("--block", type=int, default=5, help="steps of one variant in a row")
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--no-reference", dest="reference", action="store_false", help="skip the literal reference model"
    )
    p.add_argument(
        "--profile-steps", type=int, default=5, help="fast-path steps under torch.profiler (0: no profile)"
    )
    args = p.parse_args(argv)

    head = header("train_speed")
    cpu = head["cpu"]
    device = torch.device(args.device)
    cores = int(cpu["affinity"] or 1)
    threads = [int(v) for v in args.threads.split(",") if v] or sorted({cores, 1}, reverse=True)
    bf16 = bf16_native(device, cpu["flags"])  # type: ignore[arg-type]
    by_threads = [measure(args, n, device, bf16) for n in threads]
    top = by_threads[0]
    result: dict[str, object] = {
        "model": args.model,
        "setup": {
            "batch": args.batch,
            "T": args.steps,
            "d": args.d,
            "M": len(INPUT_DIMS),
            "input_dims": INPUT_DIMS,
            "stage2_hidden": args.d,
            "heads": 4,
            "ff_dim": 2 * args.d,
            "optimizer": "Adam lr 5e-3: fast path fused=True (perr.train.make_optimizer), reference torch default",
            "dtype": "float32",
            "device": str(device),
            "warmup": args.warmup,
            "repeats": args.repeats,
            "block": args.block,
            "statistic": "median over rounds of each block's median step; blocks alternate, order reversed "
            "every other round",
            "data": "random features (synthetic), ~20% of steps masked per modality, clip 0 without text",
        },
        **{
            k: top[k]
            for k in (
                "step_ms",
                "reference_step_ms",
                "speedup",
                "epoch_s_erato",
                "step_ms_train",
                "speedup_train",
                "helpers_gain",
                "cpu_helpers",
                "step_ms_bf16",
                "step_ms_bf16_train",
                "speedup_bf16_train",
                "kernel_floor_ms",
                "epoch_floor_s_erato",
                "profile",
            )
        },
        "torch_threads": top["threads"],
        "bf16_native": bf16,
        "by_threads": by_threads,
        "mkldnn": torch.backends.mkldnn.is_available(),
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
    }
    result = write_result(args.out, result, head)
    keys = ("step_ms", "step_ms_train", "helpers_gain", "reference_step_ms", "speedup", "speedup_train")
    summary = {k: result[k] for k in keys}
    print(
        summary,
        "threads:",
        [(b["threads"], b["step_ms"], b["step_ms_train"], b["helpers_gain"]) for b in by_threads],
    )
    return result


if __name__ == "__main__":
    main()
