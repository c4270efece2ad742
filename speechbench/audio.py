"""Audio I/O with validation: soundfile to read, torchaudio to resample.

Every problem with a file is raised as an :class:`AudioError` that names the file
and says what to do, so a bad item in a corpus is found, not averaged away.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from speechbench.errors import AudioError


def read_audio(
    path: Path | str, expected_rate: int | None = None, channels: int = 1
) -> tuple[np.ndarray, int]:
    """Read a file as float32 in [-1, 1]: 1-D for ``channels=1``, else ``C x T``.

    Rejects corrupt, empty, NaN/Inf and wrong-rate files, and a channel count other than
    the one the stream declares."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: audio file not found; re-run `speechbench data prepare`")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError
        raise AudioError(
            f"{path}: cannot decode audio ({exc}); replace or delete the file"
        ) from None
    if data.shape[1] != channels:
        if channels == 1:
            raise AudioError(
                f"{path}: has {data.shape[1]} channels, this stream is mono; "
                "downmix it (e.g. `sox in.wav -c 1 out.wav`)"
            )
        raise AudioError(
            f"{path}: has {data.shape[1]} channel(s), this stream needs {channels}; "
            "use a corpus whose stream has that many channels"
        )
    wav = data[:, 0] if channels == 1 else np.ascontiguousarray(data.T)
    if wav.size == 0:
        raise AudioError(f"{path}: audio file is empty (0 samples); replace or delete it")
    if not np.isfinite(wav).all():
        raise AudioError(f"{path}: audio contains NaN or Inf samples; replace the file")
    if expected_rate is not None and rate != expected_rate:
        raise AudioError(
            f"{path}: sample rate is {rate} Hz but the manifest says {expected_rate} Hz; "
            "re-run `speechbench data prepare` for this corpus"
        )
    return wav, rate


@lru_cache(maxsize=16)
def _resampler(orig: int, new: int):
    from speechbench._torchaudio import torchaudio

    return lambda x: torchaudio.functional.resample(x, orig, new)


def resample(wav: torch.Tensor | np.ndarray, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Band-limited (sinc) resampling through torchaudio along the last axis; a no-op when
    rates match."""
    tensor = torch.as_tensor(wav, dtype=torch.float32)
    if orig_rate == new_rate:
        return tensor
    return _resampler(orig_rate, new_rate)(tensor)


def load(
    path: Path | str, target_rate: int, expected_rate: int | None = None, channels: int = 1
) -> torch.Tensor:
    """Read, validate and resample one file to ``target_rate``: 1-D, or ``C x T``."""
    wav, rate = read_audio(path, expected_rate, channels)
    return resample(wav, rate, target_rate)


def write_audio(path: Path | str, wav: torch.Tensor | np.ndarray, rate: int) -> None:
    """Write 16-bit PCM WAV atomically (1-D mono or ``C x T``)."""
    from speechbench.atomic import write_with

    array = np.asarray(wav.detach().cpu() if isinstance(wav, torch.Tensor) else wav, np.float32)
    array = np.clip(array, -1.0, 1.0)
    if array.ndim == 2:  # C x T in speechbench, T x C for soundfile
        array = array.T
    write_with(
        Path(path), lambda tmp: sf.write(str(tmp), array, rate, subtype="PCM_16", format="WAV")
    )
