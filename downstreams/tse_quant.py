"""LiMuSE's quantization: 3-bit non-uniform weights, 8-bit activations, bit-packed storage.

- **Weights** (LiMuSE eq. 1-4, the "quantization networks" of Yang et al., CVPR 2019):
  a layer's weights w map to ``alpha * (v_0 + sum_i s_i * sigmoid(T * (beta * w - b_i)))``
  with the levels ``v = (-4, -2, -1, 0, 1, 2, 4)`` (7 non-uniform, power-of-two levels:
  a 3-bit code), ``s_i = v_{i+1} - v_i`` the steps, ``b_i`` the midpoints between levels,
  and learnable per-layer ``alpha`` (output scale) and ``beta`` (input scale). The
  temperature T is annealed (LiMuSE: T = 5 x epoch); as T grows the sigmoids become
  unit steps, and at inference the hard quantizer (the steps themselves) is used:
  ``alpha * v[code]``, with ``code`` the number of thresholds ``beta * w`` exceeds.
- **Activations** (eq. 5-6): per-tensor 8-bit min-max fake quantization of a quantized
  layer's input, ``round((x - min) / scale) * scale + min`` with ``scale = (max - min) /
  255``, passed straight through in the backward pass.
- **Storage**: :func:`write_packed` writes the hard-quantized weights as 3-bit codes
  packed 8 codes per 3 bytes plus one float32 ``alpha`` per layer, and every other tensor
  (biases, norms, PReLU slopes, unquantized layers) as float32, behind a small JSON
  header; the model size is the byte count of that file, measured, not computed.

Written by hand: neither torch.ao (being removed upstream) nor brevitas has the
sum-of-sigmoids quantizer; this is plain-PyTorch fake quantization.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from speechbench import atomic
from speechbench.errors import ConfigError

LEVELS_3BIT = (-4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0)
CODE_BITS = 3
ACT_BITS = 8
MAGIC = b"SBQ1"


class SigmoidQuantizer(nn.Module):
    """Per-layer sum-of-sigmoids weight quantizer with learnable alpha and beta."""

    def __init__(self, levels: tuple[float, ...] = LEVELS_3BIT) -> None:
        super().__init__()
        values = torch.tensor(levels, dtype=torch.float32)
        if len(levels) > 2**CODE_BITS or not bool((values[1:] > values[:-1]).all()):
            raise ConfigError(f"quantizer levels must be <= {2**CODE_BITS} increasing values")
        self.register_buffer("levels", values)
        self.register_buffer("steps", values[1:] - values[:-1])
        self.register_buffer("thresholds", (values[1:] + values[:-1]) / 2)
        self.alpha = nn.Parameter(torch.ones(()))
        self.beta = nn.Parameter(torch.ones(()))
        self.register_buffer("temperature", torch.tensor(1.0))

    @torch.no_grad()
    def init_from(self, weight: torch.Tensor) -> None:
        """Scale so the largest level sits at the 99.5th percentile of |w| (alpha = 1/beta:
        the quantized weights start on the weights' own scale)."""
        top = torch.quantile(weight.detach().abs().flatten().float(), 0.995).clamp_min(1e-8)
        self.beta.fill_(float(self.levels.abs().max() / top))
        self.alpha.fill_(float(1.0 / self.beta))

    def forward(self, weight: torch.Tensor, hard: bool = False) -> torch.Tensor:
        x = (self.beta * weight).unsqueeze(-1) - self.thresholds
        gates = (x > 0).to(weight.dtype) if hard else torch.sigmoid(self.temperature * x)
        return self.alpha * (self.levels[0] + (gates * self.steps).sum(-1))

    @torch.no_grad()
    def codes(self, weight: torch.Tensor) -> torch.Tensor:
        """Level index of each weight under the hard quantizer (uint8)."""
        x = (self.beta * weight).unsqueeze(-1) - self.thresholds
        return (x > 0).sum(-1).to(torch.uint8)


class _ActQuant(torch.autograd.Function):
    """8-bit min-max fake quantization with a straight-through gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        scale = (high - low).clamp_min(1e-8) / (2**ACT_BITS - 1)
        return torch.round((x - low) / scale) * scale + low

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return grad, None, None


def quantize_activation(
    x: torch.Tensor, low: torch.Tensor | None = None, high: torch.Tensor | None = None
) -> torch.Tensor:
    """Fake-quantize ``x`` to 8 bits over [low, high] (default: its own min and max)."""
    low = x.detach().min() if low is None else low
    high = x.detach().max() if high is None else high
    return _ActQuant.apply(x, low, high)


class QuantMixin:
    """A layer whose weight can be fake-quantized: FP until :meth:`enable` is called."""

    weight: torch.Tensor
    training: bool

    def _init_quant(self) -> None:
        self.quantizer = SigmoidQuantizer()
        self.register_buffer("quant_on", torch.tensor(False))  # type: ignore[attr-defined]

    @property
    def quantized(self) -> bool:
        return bool(self.quant_on)

    def enable(self) -> None:
        if not self.quantized:
            self.quantizer.init_from(self.weight)
            self.quant_on.fill_(True)

    def effective_weight(self) -> torch.Tensor:
        if not self.quantized:
            return self.weight
        return self.quantizer(self.weight, hard=not self.training)

    def effective_input(self, x: torch.Tensor) -> torch.Tensor:
        return quantize_activation(x) if self.quantized else x

    def effective_input_pair(
        self, a: torch.Tensor, b: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Two tensors that are halves of one input (a concatenation): quantized over
        their joint range, as the concatenation itself would be."""
        if not self.quantized:
            return a, b
        low = torch.minimum(a.detach().min(), b.detach().min())
        high = torch.maximum(a.detach().max(), b.detach().max())
        return quantize_activation(a, low, high), quantize_activation(b, low, high)


class QConv1d(QuantMixin, nn.Conv1d):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(self.effective_input(x), self.effective_weight(), self.bias)


class QLinear(QuantMixin, nn.Linear):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_quant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.effective_input(x), self.effective_weight(), self.bias)


def quant_layers(model: nn.Module) -> Iterator[tuple[str, QuantMixin]]:
    for name, module in model.named_modules():
        if isinstance(module, QuantMixin):
            yield name, module


def enable_quantization(model: nn.Module) -> int:
    """Switch every quantizable layer to fake quantization; returns how many."""
    layers = list(quant_layers(model))
    for _, layer in layers:
        layer.enable()
    return len(layers)


def set_temperature(model: nn.Module, temperature: float) -> None:
    for _, layer in quant_layers(model):
        layer.quantizer.temperature.fill_(float(temperature))


# ---------------------------------------------------------------- bit-packed storage
def pack_codes(codes: np.ndarray, bits: int = CODE_BITS) -> bytes:
    """``bits``-bit codes (uint8 < 2**bits), most significant bit first, packed to bytes."""
    codes = np.asarray(codes, dtype=np.uint8).reshape(-1)
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint8)
    return np.packbits(((codes[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)).tobytes()


def unpack_codes(data: bytes, count: int, bits: int = CODE_BITS) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[: count * bits]
    weights = (1 << np.arange(bits - 1, -1, -1)).astype(np.uint8)
    return (flat.reshape(count, bits) * weights).sum(1).astype(np.uint8)


def _quantized_weights(model: nn.Module) -> dict[str, QuantMixin]:
    return {f"{n}.weight" if n else "weight": m for n, m in quant_layers(model) if m.quantized}


def write_packed(model: nn.Module, path: Path) -> int:
    """Write the model for inference: quantized weights as 3-bit codes + alpha, every
    other tensor needed at inference as float32. Returns the file's size in bytes."""
    quantized = _quantized_weights(model)
    header: list[dict] = []
    blobs: list[bytes] = []
    for name, tensor in model.state_dict().items():
        if name.endswith((".quantizer.alpha", ".quantizer.beta", ".quantizer.temperature")):
            continue  # alpha goes with its layer's codes; beta/T are training-only
        if name.endswith((".quantizer.levels", ".quantizer.steps", ".quantizer.thresholds")):
            continue  # constants of the format (LEVELS_3BIT)
        if name.endswith(".quant_on"):
            continue
        shape = list(tensor.shape)
        if name in quantized:
            layer = quantized[name]
            codes = layer.quantizer.codes(tensor).numpy()
            blob = struct.pack("<f", float(layer.quantizer.alpha.detach())) + pack_codes(codes)
            header.append({"name": name, "shape": shape, "kind": "q3"})
        elif tensor.dtype.is_floating_point:
            blob = tensor.detach().float().contiguous().numpy().tobytes()
            header.append({"name": name, "shape": shape, "kind": "f32"})
        else:
            continue  # integer bookkeeping buffers (none in these models)
        blobs.append(blob)
    meta = json.dumps({"levels": LEVELS_3BIT, "tensors": header}, separators=(",", ":"))
    payload = MAGIC + struct.pack("<I", len(meta)) + meta.encode() + b"".join(blobs)
    atomic.write_with(Path(path), lambda tmp: Path(tmp).write_bytes(payload))
    return Path(path).stat().st_size


def read_packed(path: Path) -> dict[str, torch.Tensor]:
    """The inference tensors of a packed file: quantized weights decoded to float."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ConfigError(f"{path}: not a speechbench packed model (bad magic)")
    (size,) = struct.unpack("<I", data[4:8])
    meta = json.loads(data[8 : 8 + size])
    levels = np.asarray(meta["levels"], dtype=np.float32)
    offset = 8 + size
    tensors = {}
    for entry in meta["tensors"]:
        count = int(np.prod(entry["shape"])) if entry["shape"] else 1
        if entry["kind"] == "q3":
            (alpha,) = struct.unpack("<f", data[offset : offset + 4])
            nbytes = (count * CODE_BITS + 7) // 8
            codes = unpack_codes(data[offset + 4 : offset + 4 + nbytes], count)
            values = np.float32(alpha) * levels[codes]
            offset += 4 + nbytes
        else:
            values = np.frombuffer(data[offset : offset + 4 * count], dtype=np.float32)
            offset += 4 * count
        tensors[entry["name"]] = torch.from_numpy(values.copy()).reshape(entry["shape"])
    return tensors


def hard_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weights the hard quantizer uses at inference (for checking the packed file)."""
    with torch.no_grad():
        return {
            name: layer.quantizer(layer.weight, hard=True)
            for name, layer in _quantized_weights(model).items()
        }
