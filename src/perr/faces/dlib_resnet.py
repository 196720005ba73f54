"""dlib's face-identity ResNet, read from its own ``.dat`` file and run in torch.

dlib-bin is built without BLAS, so its network multiplies matrices with dlib's own loops: 60–90 ms a
face on one core, the largest single cost of ``perr build``. The weights are plain float32 tensors inside
dlib's serialisation, so this module reads them (:func:`read_dlib_resnet`) and runs the same
architecture with torch's convolutions (:class:`DlibResNet`): the same descriptor to float rounding
(``tests/test_faces.py`` compares both on real faces), several times faster, and batched.

The file layout follows dlib's ``serialize`` functions (dlib/serialize.h, dlib/dnn/core.h, layers.h,
input.h, loss.h): integers in dlib's compact form (a byte holding the length and sign, then the
little-endian bytes), strings as a length and bytes, bools as ``'0'``/``'1'``, floats as an int64
mantissa and an int16 exponent, tensors as four sizes and raw little-endian float32. A network is
written from the loss layer inward, each layer's own fields *after* its sub-network's, so the reader
needs the network's type: :data:`FACE_RESNET` spells out ``anet_type`` of dlib's
``face_recognition_model_v1`` (dlib/tools/python/src/face_recognition.cpp), outermost layer first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _ares(down: bool) -> list[str]:
    """One residual unit of ``anet_type`` (relu<residual<…>> or relu<residual_down<…>>), outermost first."""
    block = ["affine", "con", "relu", "affine", "con"]  # BN<con<N,3,3,1,1,relu<BN<con<N,3,3,s,s,…>>>>>
    if down:  # add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,BN,2,tag1<SUBNET>>>>>>
        return ["relu", "add_prev2", "avg_pool", "skip1", "tag2", *block, "tag1"]
    return ["relu", "add_prev1", *block, "tag1"]  # add_prev1<block<N,BN,1,tag1<SUBNET>>>


#: ``anet_type`` outermost first (below the loss): fc_no_bias<128, avg_pool_everything<alevel0<…alevel4<
#: max_pool<3,3,2,2, relu<affine<con<32,7,7,2,2, input_rgb_image_sized<150>>>>>>>>>>>
FACE_RESNET: list[str] = [
    "fc",
    "avg_pool",
    *_ares(True),  # alevel0: ares_down<256>
    *_ares(False), *_ares(False), *_ares(True),  # alevel1: 256
    *_ares(False), *_ares(False), *_ares(True),  # alevel2: 128
    *_ares(False), *_ares(False), *_ares(False), *_ares(True),  # alevel3: 64
    *_ares(False), *_ares(False), *_ares(False),  # alevel4: 32
    "max_pool",
    "relu",
    "affine",
    "con",
    "input",
]  # fmt: skip


class DlibFormatError(ValueError):
    """The file is not the dlib network this reader expects (names the byte offset)."""


class _Reader:
    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.pos, self.name = data, 0, name

    def fail(self, what: str) -> DlibFormatError:
        return DlibFormatError(f"{self.name}: {what} at byte {self.pos}")

    def int(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        head = self.data[self.pos]
        size = head & 0x0F
        if size == 0 or size > 8 or head & 0x70:
            raise self.fail(f"bad integer header 0x{head:02x}")
        raw = self.data[self.pos + 1 : self.pos + 1 + size]
        self.pos += 1 + size
        value = int.from_bytes(raw, "little")
        return -value if head & 0x80 else value

    def string(self) -> str:
        n = self.int()
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s.decode("ascii", errors="replace")

    def bool(self) -> bool:
        ch = self.data[self.pos : self.pos + 1]
        if ch not in (b"0", b"1"):
            raise self.fail(f"bad bool {ch!r}")
        self.pos += 1
        return ch == b"1"

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # float_details' codes for inf / -inf / nan
            raise self.fail("non-finite float")
        return float(mantissa) * 2.0**exponent

    def expect(self, *names: str) -> str:
        s = self.string()
        if s not in names:
            raise self.fail(f"expected {' or '.join(names)}, found {s!r}")
        return s

    def version(self, lo: int, hi: int, what: str) -> int:
        v = self.int()
        if not lo <= v <= hi:
            raise self.fail(f"unexpected {what} version {v}")
        return v

    def shape(self, version: int) -> tuple[int, int, int, int]:
        """An (alias_)tensor's header: its version, then num_samples, k, nr, nc."""
        self.version(version, version, "tensor")
        return (self.int(), self.int(), self.int(), self.int())

    def tensor(self) -> np.ndarray:
        shape = self.shape(2)
        n = int(np.prod(shape))
        end = self.pos + 4 * n
        if end > len(self.data):
            raise self.fail("tensor runs past the end of the file")
        arr = np.frombuffer(self.data, dtype="<f4", count=n, offset=self.pos).reshape(shape)
        self.pos = end
        return arr


@dataclass
class Layer:
    """One layer of the network, in the order the input flows through them."""

    kind: str  # con | affine | relu | max_pool | avg_pool | fc | add_prev | tag | skip
    tag: int = 0  # for tag / skip / add_prev
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    window: int = 0  # pooling window; 0 = the whole image (avg_pool_everything)


def _details(r: _Reader, kind: str) -> Layer:
    """A layer's own fields (dlib's ``serialize(details)``)."""
    if kind == "con":
        version = r.expect("con_4", "con_5", "con_6")
        params = r.tensor()
        filters_n, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
        filters = r.shape(1)
        biases = r.shape(1)
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        use_bias = r.bool() if version in ("con_5", "con_6") else True
        if version == "con_6":
            r.bool()  # use_relu: only a training-time fusion flag
        if nr != nc or sy != sx or py != px or filters[0] != filters_n:
            raise r.fail("non-square convolution")
        flat = params.reshape(-1)
        nw = int(np.prod(filters))
        weight = flat[:nw].reshape(filters)
        bias = flat[nw : nw + int(np.prod(biases))].reshape(-1) if use_bias else None
        return Layer("con", weight=weight, bias=bias, stride=sy, padding=py)
    if kind == "affine":
        version = r.expect("affine_", "affine_2")
        params = r.tensor()
        gamma, beta = r.shape(1), r.shape(1)
        mode = r.int()
        if version == "affine_2":
            r.bool()  # disabled
        if mode != 0:
            raise r.fail("affine layer not in convolution mode")
        flat = params.reshape(-1)
        ng = int(np.prod(gamma))
        return Layer("affine", weight=flat[:ng].copy(), bias=flat[ng : ng + int(np.prod(beta))].copy())
    if kind == "relu":
        if r.expect("relu_", "relu_2") == "relu_2" and r.bool():
            raise r.fail("disabled relu")
        return Layer("relu")
    if kind in ("max_pool", "avg_pool"):
        r.expect(f"{kind}_2")
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        if nr != nc or sy != sx or py != px:
            raise r.fail(f"non-square {kind}")
        return Layer(kind, window=nr, stride=sy, padding=py)
    if kind == "fc":
        version = r.expect("fc_2", "fc_3")
        r.int(), r.int()  # num_outputs, num_inputs
        params = r.tensor()
        weights, biases = r.shape(1), r.shape(1)
        bias_mode = r.int()
        for _ in range(4):
            r.float()
        use_bias = r.bool() if version == "fc_3" else True
        flat = params.reshape(-1)
        nw = int(np.prod(weights))
        w = flat[:nw].reshape(weights[0], weights[1])  # [inputs, outputs]
        has_bias = bias_mode == 0 and use_bias and int(np.prod(biases)) > 0
        return Layer("fc", weight=w, bias=flat[nw : nw + int(np.prod(biases))].copy() if has_bias else None)
    if kind.startswith("add_prev"):
        r.expect("add_prev_")
        return Layer("add_prev", tag=int(kind[-1]))
    raise r.fail(f"unknown layer kind {kind!r}")


def _layer(r: _Reader, chain: list[str], i: int, out: list[Layer], inputs: dict[str, float]) -> None:
    """Read chain[i] (and everything inside it); append the layers to `out` input-first."""
    kind = chain[i]
    if kind[:3] in ("tag", "ski"):
        r.version(1, 1, kind)
        _layer(r, chain, i + 1, out, inputs)
        out.append(Layer("tag" if kind.startswith("tag") else "skip", tag=int(kind[-1])))
        return
    if chain[i + 1] == "input":  # add_layer<LAYER, INPUT_LAYER>
        version = r.version(2, 3, "input add_layer")
        r.expect("input_rgb_image_sized")
        inputs.update(red=r.float(), green=r.float(), blue=r.float(), rows=r.int(), cols=r.int())
        out.append(_details(r, kind))
        r.bool(), r.bool(), r.bool()
        r.tensor(), r.tensor(), r.tensor()  # x_grad, cached_output, grad_final
        if version >= 3:
            r.int()  # sample expansion factor
        return
    version = r.version(1, 2, "add_layer")
    _layer(r, chain, i + 1, out, inputs)
    out.append(_details(r, kind))
    r.bool(), r.bool(), r.bool()
    r.tensor(), r.tensor()  # x_grad, cached_output
    if version == 2:
        r.tensor()  # params_grad


def read_dlib_resnet(
    path: str | Path, chain: list[str] = FACE_RESNET
) -> tuple[list[Layer], dict[str, float]]:
    """The layers (input first) and input normalisation of a dlib metric-loss network file."""
    path = Path(path)
    r = _Reader(path.read_bytes(), str(path))
    r.version(1, 1, "loss layer")
    if r.expect("loss_metric_", "loss_metric_2") == "loss_metric_2":
        r.float(), r.float()  # margin, distance threshold
    layers: list[Layer] = []
    inputs: dict[str, float] = {}
    _layer(r, chain, 0, layers, inputs)
    if r.pos != len(r.data):
        raise r.fail(f"{len(r.data) - r.pos} bytes left after the network")
    return layers, inputs


def _padded_add(a: Tensor, b: Tensor) -> Tensor:
    """dlib's add_prev: the sum over the larger shape, each input zero-padded at its far ends."""
    shape = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:], strict=True)]

    def pad(t: Tensor) -> Tensor:
        c, h, w = (s - n for s, n in zip(shape, t.shape[1:], strict=True))
        return F.pad(t, (0, w, 0, h, 0, c)) if c or h or w else t

    return pad(a) + pad(b)


class DlibResNet(nn.Module):
    """The network of :func:`read_dlib_resnet` as torch ops: uint8 RGB chips [n, 150, 150, 3] → [n, 128]."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        layers, inputs = read_dlib_resnet(path)
        self.size = (int(inputs["rows"]), int(inputs["cols"]))
        self.register_buffer(
            "mean", torch.tensor([inputs["red"], inputs["green"], inputs["blue"]]).view(1, 3, 1, 1)
        )
        self.plan = [(ly.kind, ly.tag, ly.stride, ly.padding, ly.window) for ly in layers]
        self.weights = nn.ParameterList()
        for ly in layers:
            if ly.kind in ("con", "affine", "fc"):
                w = torch.from_numpy(np.array(ly.weight, dtype=np.float32))
                b = torch.from_numpy(np.array(ly.bias, dtype=np.float32)) if ly.bias is not None else None
                if ly.kind == "affine":
                    w, b = w.view(1, -1, 1, 1), b.view(1, -1, 1, 1) if b is not None else None
                self.weights.append(nn.Parameter(w, requires_grad=False))
                self.weights.append(nn.Parameter(b if b is not None else torch.zeros(0), requires_grad=False))
        self.eval()

    @torch.inference_mode()
    def forward(self, chips: Tensor) -> Tensor:
        if chips.ndim != 4 or tuple(chips.shape[1:3]) != self.size or chips.shape[3] != 3:
            raise ValueError(
                f"expected uint8 RGB chips [n, {self.size[0]}, {self.size[1]}, 3], got {tuple(chips.shape)}"
            )
        x = (chips.permute(0, 3, 1, 2).float() - self.mean) / 256.0
        tags: dict[int, Tensor] = {}
        params = iter(self.weights)
        for kind, tag, stride, padding, window in self.plan:
            if kind == "con":
                w, b = next(params), next(params)
                x = F.conv2d(x, w, b if b.numel() else None, stride=stride, padding=padding)
            elif kind == "affine":
                w, b = next(params), next(params)
                x = torch.addcmul(b, x, w)
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "max_pool":
                x = F.max_pool2d(x, window, stride, padding)
            elif kind == "avg_pool":
                x = x.mean((2, 3), keepdim=True) if window == 0 else F.avg_pool2d(x, window, stride, padding)
            elif kind == "fc":
                w, b = next(params), next(params)
                x = x.flatten(1) @ w
                if b.numel():
                    x = x + b
            elif kind == "tag":
                tags[tag] = x
            elif kind == "skip":
                x = tags[tag]
            elif kind == "add_prev":
                x = _padded_add(x, tags[tag])
        return x

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """uint8 RGB chips [n, 150, 150, 3] → float32 descriptors [n, 128], on one torch thread."""
        if len(chips) == 0:
            return np.zeros((0, 128), np.float32)
        with one_thread():
            out = self(torch.from_numpy(np.ascontiguousarray(chips)))
        return out.numpy().astype(np.float32, copy=False)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one intra-op thread for the block: a descriptor then never depends on the process's
    thread count (a build in one process equals one spread over workers, bit for bit), and the build's
    parallelism is across its worker processes anyway."""
    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


__all__ = ["FACE_RESNET", "DlibFormatError", "DlibResNet", "Layer", "read_dlib_resnet"]
