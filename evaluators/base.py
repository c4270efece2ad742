"""The evaluator contract: a frozen model that scores generated or extracted audio.

Small and HEAR-like. An evaluator class declares

- ``name``, ``kind`` ("transcribe" | "speaker_embedding" | "quality" | "vocoder"),
  ``sample_rate`` (inputs are resampled to it with :func:`speechbench.audio.resample`)
  and a one-line ``description``;
- an ``Options`` dataclass (its typed settings, e.g. a model path; default: none);
- ``weights_available()`` -> ``(available?, what to provide if not)``, checked without
  loading anything;
- ``fingerprint()``: weights file hash + code hash (as upstreams do), which a run keeps
  in its record through :meth:`Evaluator.record`;
- one method per kind (below). Construction is cheap: the model loads on first use, and
  a per-process cache (:func:`cached_model`) makes every instance with the same weights
  share one loaded model.

Kinds and their methods (``wavs`` is a list of 1-D tensors or arrays, ``sample_rate`` the
rate they are at, default the evaluator's own):

- ``Transcriber.transcribe(wavs, sample_rate) -> list[str]`` (raw text; normalise with
  :func:`speechbench.text.normalize` before WER);
- ``SpeakerEmbedder.embed(wavs, sample_rate) -> Tensor N x D`` (L2-normalised rows);
- ``QualityScorer.score(wavs, sample_rate) -> list[dict[str, float]]``;
- ``Vocoder.wave_to_mel(wav, sample_rate) -> Tensor T x D`` and
  ``Vocoder.mel_to_wave(mel) -> Tensor`` at ``sample_rate``; ``Vocoder.features`` states
  exactly which features the vocoder inverts, so a decoder can be trained to predict them.
"""

from __future__ import annotations

import hashlib
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from speechbench.audio import resample
from speechbench.errors import AudioError, WeightsUnavailableError

Kind = Literal["transcribe", "speaker_embedding", "quality", "vocoder"]
KINDS: tuple[str, ...] = ("transcribe", "speaker_embedding", "quality", "vocoder")

Wave = torch.Tensor | np.ndarray

_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


def cached_model(key: tuple, load: Callable[[], Any]) -> Any:
    """The model stored under ``key`` in this process, loading it with ``load()`` once."""
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load()
        return _MODELS[key]


def clear_model_cache() -> None:
    """Drop every loaded evaluator model of this process (tests, memory)."""
    with _MODELS_LOCK:
        _MODELS.clear()


@dataclass
class NoOptions:
    """Evaluators without settings use this."""


class Evaluator:
    name: ClassVar[str]
    kind: ClassVar[Kind]
    sample_rate: ClassVar[int] = 16000
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    # -- weights ---------------------------------------------------------------------
    @classmethod
    def weights_available(cls, options: Any = None) -> tuple[bool, str]:
        """(usable on this machine?, what to provide if not). Default: nothing needed."""
        return True, "no pretrained weights needed"

    def require_weights(self) -> None:
        """Raise :class:`WeightsUnavailableError` naming what to provide, if anything."""
        ok, what = self.weights_available(self.options)
        if not ok:
            raise WeightsUnavailableError(f"evaluator {self.name}: {what}")

    def load(self) -> Any:
        """Build the frozen model (called once per process per :meth:`model_key`)."""
        return None

    def model_key(self) -> tuple:
        """What identifies the loaded model: class and options by default."""
        options = asdict(self.options) if is_dataclass(self.options) else repr(self.options)
        return (type(self).__module__, type(self).__qualname__, repr(options))

    @property
    def model(self) -> Any:
        """The loaded model, loaded lazily on first use and shared in the process."""
        self.require_weights()
        return cached_model(self.model_key(), self.load)

    # -- fingerprint -----------------------------------------------------------------
    def weights_fingerprint(self) -> str:
        """Hash of the weights; evaluators with weight files override this."""
        return "no-weights"

    def code_fingerprint(self) -> str:
        """Hash of the source of the module that defines this evaluator, and its class name."""
        source = inspect.getsource(inspect.getmodule(type(self)))
        return hashlib.sha256(f"{type(self).__qualname__}\n{source}".encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        self.require_weights()
        return f"{self.weights_fingerprint()}-{self.code_fingerprint()}"

    def record(self) -> dict[str, Any]:
        """What a run keeps about the evaluator it was scored with."""
        options = asdict(self.options) if is_dataclass(self.options) else {}
        return {
            "name": self.name,
            "kind": self.kind,
            "sample_rate": self.sample_rate,
            "options": options,
            "fingerprint": self.fingerprint(),
        }

    # -- inputs ----------------------------------------------------------------------
    def prepare(self, wavs: Sequence[Wave], sample_rate: int | None = None) -> list[torch.Tensor]:
        """1-D float32 tensors at ``self.sample_rate``; empty, NaN or multi-channel input is
        an :class:`AudioError` naming the item."""
        if isinstance(wavs, (torch.Tensor, np.ndarray)):
            raise AudioError(
                f"evaluator {self.name}: pass a list of 1-D waveforms, not one array "
                f"of shape {tuple(wavs.shape)}"
            )
        rate = self.sample_rate if sample_rate is None else int(sample_rate)
        out = []
        for i, wav in enumerate(wavs):
            tensor = torch.as_tensor(
                wav.detach().cpu() if isinstance(wav, torch.Tensor) else wav,
                dtype=torch.float32,
            )
            if tensor.dim() != 1:
                raise AudioError(
                    f"evaluator {self.name}: waveform {i} has shape {tuple(tensor.shape)}; "
                    "give mono 1-D audio"
                )
            if tensor.numel() == 0:
                raise AudioError(f"evaluator {self.name}: waveform {i} is empty")
            if not torch.isfinite(tensor).all():
                raise AudioError(f"evaluator {self.name}: waveform {i} has NaN or Inf samples")
            out.append(resample(tensor, rate, self.sample_rate))
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, options={self.options!r})"


class Transcriber(Evaluator):
    kind: ClassVar[Kind] = "transcribe"

    def transcribe(self, wavs: Sequence[Wave], sample_rate: int | None = None) -> list[str]:
        raise NotImplementedError


class SpeakerEmbedder(Evaluator):
    kind: ClassVar[Kind] = "speaker_embedding"
    dim: ClassVar[int] = 0

    def embed(self, wavs: Sequence[Wave], sample_rate: int | None = None) -> torch.Tensor:
        raise NotImplementedError


class QualityScorer(Evaluator):
    kind: ClassVar[Kind] = "quality"
    keys: ClassVar[tuple[str, ...]] = ()  # the keys of every score dict

    def score(self, wavs: Sequence[Wave], sample_rate: int | None = None) -> list[dict[str, float]]:
        raise NotImplementedError


class Vocoder(Evaluator):
    kind: ClassVar[Kind] = "vocoder"

    @property
    def features(self) -> Any:
        """The exact definition of the features ``mel_to_wave`` inverts (a dataclass)."""
        raise NotImplementedError

    @property
    def feature_dim(self) -> int:
        raise NotImplementedError

    @property
    def frame_rate(self) -> float:
        """Feature frames per second."""
        raise NotImplementedError

    def wave_to_mel(self, wav: Wave, sample_rate: int | None = None) -> torch.Tensor:
        """``T x feature_dim`` features of one waveform (the vocoder's own definition)."""
        raise NotImplementedError

    def mel_to_wave(self, mel: torch.Tensor | np.ndarray, **kwargs: Any) -> torch.Tensor:
        """A 1-D waveform at ``sample_rate`` from ``T x feature_dim`` features."""
        raise NotImplementedError

    def copy_synthesis(self, wav: Wave, sample_rate: int | None = None) -> torch.Tensor:
        """Analyse then resynthesise: the ceiling of any system that predicts the features."""
        return self.mel_to_wave(self.wave_to_mel(wav, sample_rate))

    def _one(self, wav: Wave, sample_rate: int | None) -> torch.Tensor:
        return self.prepare([wav], sample_rate)[0]

    def _check_features(self, mel: torch.Tensor | np.ndarray) -> torch.Tensor:
        tensor = torch.as_tensor(
            mel.detach().cpu() if isinstance(mel, torch.Tensor) else mel, dtype=torch.float32
        )
        if tensor.dim() != 2 or tensor.shape[1] != self.feature_dim or tensor.shape[0] == 0:
            raise AudioError(
                f"vocoder {self.name}: features of shape {tuple(tensor.shape)}; "
                f"expected T x {self.feature_dim} with T >= 1 ({self.features})"
            )
        if not torch.isfinite(tensor).all():
            raise AudioError(f"vocoder {self.name}: features contain NaN or Inf")
        return tensor
