"""DNSMOS (Reddy et al., ICASSP 2021/2022): non-intrusive MOS of speech, no reference.

The ONNX models shipped inside the PyPI ``speechmos`` wheel: P.835 (``sig`` speech
quality, ``bak`` background noise, ``ovrl`` overall, 1-5) and P.808 (``p808`` overall MOS),
non-personalised, at 16 kHz. speechmos tiles a clip by repetition to at least 9.01 s and
averages 9 s windows at 1 s hops. Sessions are single-threaded (2 shared cores). This is
the one copy of the scorer: mini-mos labels come from :func:`dnsmos_scores` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
from speechbench.evaluators.base import QualityScorer, Wave

RATE = 16000


def _models_dir() -> Path | None:
    try:
        from speechmos import dnsmos
    except ImportError:
        return None
    return Path(dnsmos.__file__).parent / "dnsmos_models"


MODEL_FILES = ("sig_bak_ovr.onnx", "model_v8.onnx")


@lru_cache(maxsize=1)
def dnsmos_model():
    """speechmos' DNSMOS scorer with single-threaded ONNX sessions (2 shared cores)."""
    import onnxruntime as ort
    from speechmos import dnsmos

    models = _models_dir()

    class SingleThreadDNSMOS(dnsmos.DNSMOS):
        def __init__(self) -> None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            cpu = ["CPUExecutionProvider"]
            self.primary_model_path = str(models / "sig_bak_ovr.onnx")
            self.onnx_sess = ort.InferenceSession(self.primary_model_path, options, providers=cpu)
            self.p808_onnx_sess = ort.InferenceSession(
                str(models / "model_v8.onnx"), options, providers=cpu
            )

    return SingleThreadDNSMOS()


def dnsmos_scores(wav: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 SIG/BAK/OVRL and P.808 MOS of a 16 kHz clip (non-personalised)."""
    scores = dnsmos_model()(np.clip(wav, -1, 1).astype(np.float32), RATE, False)
    return {
        "sig": round(float(scores["sig_mos"]), 4),
        "bak": round(float(scores["bak_mos"]), 4),
        "ovrl": round(float(scores["ovrl_mos"]), 4),
        "p808": round(float(scores["p808_mos"]), 4),
    }


class DNSMOS(QualityScorer):
    name = "dnsmos"
    sample_rate = RATE
    description = "DNSMOS P.835 SIG/BAK/OVRL + P.808 MOS (ONNX models shipped in speechmos)"
    keys: ClassVar[tuple[str, ...]] = ("sig", "bak", "ovrl", "p808")

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        models = _models_dir()
        if models is None:
            return False, "needs `pip install speechmos onnxruntime` (ships the DNSMOS models)"
        missing = [name for name in MODEL_FILES if not (models / name).exists()]
        if missing:
            return False, f"{models} lacks {', '.join(missing)}; reinstall speechmos"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return False, "needs `pip install onnxruntime` to run the DNSMOS models"
        return True, f"DNSMOS ONNX models {models}"

    def load(self):
        return dnsmos_model()

    def weights_fingerprint(self) -> str:
        from speechbench.upstreams.ssl import checkpoint_digest

        models = _models_dir()
        return "".join(checkpoint_digest(models / name)[:8] for name in MODEL_FILES)

    def score(self, wavs: Sequence[Wave], sample_rate: int | None = None) -> list[dict[str, float]]:
        prepared = self.prepare(wavs, sample_rate)
        self.model  # noqa: B018  (load once, with a clear error if the models are missing)
        return [dnsmos_scores(wav.numpy()) for wav in prepared]
