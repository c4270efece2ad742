"""Import torchaudio without its CUDA-linked C++ extension.

Every PyPI Linux wheel of torchaudio links CUDA libraries; beside the CPU build of
torch 2.13 loading its extension fails (``OSError: libc10_cuda.so``) and with it
``import torchaudio``. The pure-Python parts we use (kaldi compliance, transforms,
functional.resample, model builders) do not need it. torchaudio skips the extension
when it finds no library file, so before torchaudio is first imported we pre-load its
(stdlib + torch only) ``_extension.utils`` module with the library directory pointed
at an empty place. We also add the two attributes s3prl 0.4 still expects
(``set_audio_backend``, ``sox_effects``), which torchaudio removed.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import torch  # noqa: F401  (torch must be imported before torchaudio)


def _skip_extension() -> None:
    name = "torchaudio._extension.utils"
    if "torchaudio" in sys.modules or name in sys.modules:
        return
    spec = importlib.util.find_spec("torchaudio")
    if spec is None or not spec.submodule_search_locations:
        return
    utils_file = Path(spec.submodule_search_locations[0]) / "_extension" / "utils.py"
    utils_spec = importlib.util.spec_from_file_location(name, utils_file)
    if utils_spec is None or utils_spec.loader is None:
        return
    module = importlib.util.module_from_spec(utils_spec)
    utils_spec.loader.exec_module(module)
    module._LIB_DIR = Path("/nonexistent-torchaudio-extension")
    sys.modules[name] = module


_skip_extension()
import torchaudio  # noqa: E402

if not hasattr(torchaudio, "set_audio_backend"):
    torchaudio.set_audio_backend = lambda backend=None: None  # type: ignore[attr-defined]
if "torchaudio.sox_effects" not in sys.modules:

    def _no_sox(*args, **kwargs):
        raise RuntimeError(
            "torchaudio.sox_effects was removed from torchaudio; speechbench does not use it"
        )

    _sox = types.ModuleType("torchaudio.sox_effects")
    _sox.apply_effects_tensor = _no_sox  # type: ignore[attr-defined]
    _sox.apply_effects_file = _no_sox  # type: ignore[attr-defined]
    sys.modules["torchaudio.sox_effects"] = _sox
    torchaudio.sox_effects = _sox  # type: ignore[attr-defined]

__all__ = ["torchaudio"]
