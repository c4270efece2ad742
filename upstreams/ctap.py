"""``ctap``: the speech encoder of CTAP pretrained in this repository (speechbench.ctap).

Hidden states are the speech encoder's layers at 50 frames/s: the convolutional front
end, every transformer layer, and the joint-space embedding S (when its width equals
the encoder's). The shipped checkpoint (``upstreams/checkpoints/ctap.pt``, float16
weights cast back to float32) loads with no download. The phoneme encoder and length
regulator are exposed (:meth:`CTAPUpstream.encode_phonemes`) for text-to-speech heads.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from pathlib import Path

import torch
from speechbench.upstreams.base import Upstream, file_digest

from speechbench.ctap.model import FRAME_RATE, mel_frames, speech_frames
from speechbench.errors import WeightsUnavailableError

SHIPPED = Path(__file__).parent / "checkpoints" / "ctap.pt"


@dataclass
class CTAPOptions:
    checkpoint: str = ""  # default: the shipped upstreams/checkpoints/ctap.pt


def _checkpoint_path(options: CTAPOptions) -> Path:
    return Path(options.checkpoint).expanduser() if options.checkpoint else SHIPPED


class CTAPUpstream(Upstream):
    name = "ctap"
    description = "CTAP speech encoder (contrastive token-acoustic pretraining), pretrained here"
    Options = CTAPOptions
    sample_rate = 16000
    frame_rate = FRAME_RATE
    level = "frame"

    def __init__(self, options: CTAPOptions | None = None) -> None:
        super().__init__(options)
        from speechbench.ctap.pretrain import load_exported

        path = _checkpoint_path(self.options)
        available, hint = self.weights_available(self.options)
        if not available:
            raise WeightsUnavailableError(hint)
        self.checkpoint_path = path
        self.model, self.vocabulary = load_exported(path)
        self.model.requires_grad_(False)
        config = self.model.config
        self.include_joint = config.joint_dim == config.d_model
        self.num_layers = config.speech_layers + 1 + int(self.include_joint)
        self.dim = config.d_model

    @classmethod
    def weights_available(cls, options: CTAPOptions | None = None) -> tuple[bool, str]:
        path = _checkpoint_path(options or CTAPOptions())
        if path.is_file():
            return True, str(path)
        return False, (
            f"CTAP checkpoint {path} not found; pretrain one with `speechbench pretrain ctap "
            "export_dir=DIR` and pass upstream.checkpoint=DIR/ctap.pt"
        )

    def num_parameters(self) -> int:
        """The speech encoder and its front end only: the phoneme side, prompt encoder and
        decoder of the checkpoint make no upstream feature."""
        return sum(p.numel() for p in self.model.speech.parameters())

    def weights_fingerprint(self) -> str:
        return file_digest(self.checkpoint_path)

    @classmethod
    def weights_identity(cls, options: CTAPOptions) -> str | None:
        path = _checkpoint_path(options)
        return file_digest(path) if path.is_file() else None

    def code_fingerprint(self) -> str:
        """This module and the model code it runs (speechbench/ctap/model.py): a change to
        either must not be served features cached by the other."""
        from speechbench.ctap import model

        digest = hashlib.sha256(super().code_fingerprint().encode())
        digest.update(inspect.getsource(model).encode())
        return digest.hexdigest()[:16]

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return speech_frames(mel_frames(lengths))

    def train(self, mode: bool = True) -> CTAPUpstream:
        """The upstream is frozen: dropout and batch norm stay in inference mode."""
        super().train(mode)
        self.model.eval()
        return self

    @torch.no_grad()
    def forward(self, wavs: torch.Tensor, lengths: torch.Tensor):
        self.model.eval()
        # per-utterance features padded with the normalised mean (0), exactly as in training
        mels = [
            self.model.features(wav[: int(n)][None])[0].T
            for wav, n in zip(wavs, lengths, strict=True)
        ]
        mel = torch.nn.utils.rnn.pad_sequence(mels, batch_first=True).transpose(1, 2)
        mel_lengths = torch.tensor([m.shape[0] for m in mels])
        s, hidden, frame_lengths = self.model.encode_speech(mel, mel_lengths)
        layers = list(hidden) + ([s] if self.include_joint else [])
        return layers, frame_lengths

    @torch.no_grad()
    def encode_phonemes(
        self, phones: list[list[str]], durations: list[list[int]] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Phoneme strings -> joint-space frames P (B x T x joint_dim) at 50/s and lengths.

        With ``durations`` (frames per phone) the length regulator uses them; without,
        the duration predictor's rounded predictions."""
        self.model.eval()
        ids = [torch.tensor([self.vocabulary.id(p) for p in seq]) for seq in phones]
        padded = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)
        phone_lengths = torch.tensor([len(seq) for seq in phones])
        dur = None
        if durations is not None:
            dur = torch.nn.utils.rnn.pad_sequence(
                [torch.tensor(d, dtype=torch.long) for d in durations], batch_first=True
            )
        p, frame_lengths, _ = self.model.encode_phonemes(padded, phone_lengths, dur)
        return p, frame_lengths
