"""CTAP training data from corpus manifests with ``phones`` = [[phone, start_s, end_s], ...].

Every utterance becomes a log-mel (10 ms hop) and, for every 50/s speech frame, the
index of the phone covering it (gaps in the alignment become the silence token). A
training example is a random crop of at most ``max_seconds``; its phoneme sequence and
durations are the run-length encoding of the crop's frames, so durations always sum to
the speech-encoder frame count exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from speechbench.audio import load
from speechbench.corpora.base import Utterance
from speechbench.corpora.phones import SILENCE
from speechbench.ctap.model import FRAME_RATE, LogMel, mel_frames, speech_frames
from speechbench.errors import CorpusError

PAD = "<pad>"
SIL = SILENCE  # the phone corpora's silence label; alignment gaps map to it too
SPECIALS = (PAD, SIL)


class PhoneVocabulary:
    """Phone <-> id; id 0 pads, id 1 is silence (alignment gaps)."""

    def __init__(self, phones: Sequence[str]) -> None:
        unique = [p for p in dict.fromkeys(phones) if p not in SPECIALS]
        self.symbols: list[str] = [*SPECIALS, *unique]
        self.index = {p: i for i, p in enumerate(self.symbols)}

    @classmethod
    def from_records(
        cls, records: Sequence[Utterance], inventory: Sequence[str] | None = None
    ) -> PhoneVocabulary:
        """The corpus inventory when given (stable ids across corpora versions), plus any
        phone the records use that it lacks."""
        seen = [str(p[0]) for r in records for p in (r.phones or [])]
        return cls([*(inventory or []), *sorted(set(seen) - set(inventory or []))])

    def __len__(self) -> int:
        return len(self.symbols)

    def id(self, phone: str) -> int:
        if phone not in self.index:
            raise CorpusError(
                f"phone {phone!r} is not in the CTAP vocabulary ({len(self)} symbols); "
                "pretrain on a corpus with this phone inventory"
            )
        return self.index[phone]


@dataclass
class Example:
    """One utterance, precomputed: raw log-mel and per-frame phone segment."""

    id: str
    mel: torch.Tensor  # n_mels x T100, raw log-mel (not normalised)
    frame_token: torch.Tensor  # T50 phone id per speech frame
    frame_segment: torch.Tensor  # T50 segment number (changes at every phone boundary)


def frame_alignment(
    phones: list[list], vocab: PhoneVocabulary, num_frames: int, rate: float = FRAME_RATE
) -> tuple[torch.Tensor, torch.Tensor]:
    """(phone id, segment number) of every frame at ``rate`` frames/s (CTAP's 50/s by
    default; the tts downstream uses the upstream's rate); frames no phone covers are
    silence."""
    token = torch.full((num_frames,), vocab.id(SIL), dtype=torch.long)
    segment = torch.full((num_frames,), -1, dtype=torch.long)
    for k, (phone, start, end) in enumerate(phones):
        a = max(0, min(num_frames, round(float(start) * rate)))
        b = max(0, min(num_frames, round(float(end) * rate)))
        token[a:b] = vocab.id(str(phone))
        segment[a:b] = k
    # give every silence run its own segment number so RLE keeps it separate
    gaps = segment < 0
    if gaps.any():
        run_starts = gaps & torch.cat([torch.tensor([True]), ~gaps[:-1]])
        segment[gaps] = -torch.cumsum(run_starts.long(), 0)[gaps]
    return token, segment


def run_length(token: torch.Tensor, segment: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame (token, segment) -> phoneme ids and durations (frames) that sum to T."""
    if segment.numel() == 0:
        return token.new_zeros(0), token.new_zeros(0)
    change = torch.ones_like(segment, dtype=torch.bool)
    change[1:] = segment[1:] != segment[:-1]
    starts = torch.nonzero(change).squeeze(1)
    ends = torch.cat([starts[1:], torch.tensor([segment.numel()])])
    return token[starts], ends - starts


def load_examples(
    records: Sequence[Utterance],
    corpus_root: dict[str, Path] | Path,
    vocab: PhoneVocabulary,
    features: LogMel,
    desc: str = "features",
) -> list[Example]:
    """Read, validate and featurise every record that has phones (others are skipped)."""
    examples: list[Example] = []
    with torch.no_grad():
        for record in tqdm(records, desc=desc, unit="utt", leave=False):
            if not record.phones:
                continue
            root = corpus_root[record.id] if isinstance(corpus_root, dict) else corpus_root
            wav = load(Path(root) / record.path, features.mel.sample_rate, record.sample_rate)
            mel = features.raw(wav[None])[0]
            t50 = int(speech_frames(mel_frames(torch.tensor(wav.shape[0]))))
            token, segment = frame_alignment(record.phones, vocab, t50)
            examples.append(Example(record.id, mel, token, segment))
    if not examples:
        raise CorpusError("no utterance with phone alignments (`phones`) to pretrain CTAP on")
    return examples


def mel_statistics(examples: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and std of the raw log-mel over all frames (the model's normaliser)."""
    frames = torch.cat([e.mel for e in examples], dim=1)
    return frames.mean(dim=1), frames.std(dim=1).clamp(min=1e-3)


@dataclass
class CTAPBatch:
    mel: torch.Tensor  # B x n_mels x T100 normalised
    mel_lengths: torch.Tensor
    phones: torch.Tensor  # B x N
    phone_lengths: torch.Tensor
    durations: torch.Tensor  # B x N, rows sum to speech_frames(mel_lengths)
    prompt: torch.Tensor  # B x n_mels x clip
    frame_tokens: torch.Tensor  # B x T50 phone id per frame (0 on padding)
    ids: list[str]


def crop(
    example: Example, max_frames: int, rng: random.Random
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random window of at most ``max_frames`` speech frames: (mel, tokens, segments)."""
    t50 = example.frame_token.shape[0]
    start = rng.randint(0, t50 - max_frames) if t50 > max_frames else 0
    end = min(t50, start + max_frames)
    mel = example.mel[:, 2 * start : 2 * end]
    return mel, example.frame_token[start:end], example.frame_segment[start:end]


def collate(
    examples: Sequence[Example],
    mean: torch.Tensor,
    std: torch.Tensor,
    max_frames: int,
    prompt_frames: int,
    rng: random.Random,
) -> CTAPBatch:
    """Crop, normalise and pad a list of examples into one batch."""
    mels, tokens, phone_seqs, durations = [], [], [], []
    for example in examples:
        mel, token, segment = crop(example, max_frames, rng)
        ids, dur = run_length(token, segment)
        mels.append((mel - mean[:, None]) / std[:, None])
        tokens.append(token)
        phone_seqs.append(ids)
        durations.append(dur)
    mel_lengths = torch.tensor([m.shape[1] for m in mels])
    phone_lengths = torch.tensor([p.shape[0] for p in phone_seqs])
    pad = torch.nn.utils.rnn.pad_sequence
    mel = pad([m.T for m in mels], batch_first=True).transpose(1, 2)
    # prompt: a random clip of the same (uncropped) utterance, one length per batch
    clip = min(prompt_frames, min(e.mel.shape[1] for e in examples))
    prompts = []
    for example in examples:
        start = rng.randint(0, example.mel.shape[1] - clip)
        prompts.append((example.mel[:, start : start + clip] - mean[:, None]) / std[:, None])
    return CTAPBatch(
        mel=mel,
        mel_lengths=mel_lengths,
        phones=pad(phone_seqs, batch_first=True),
        phone_lengths=phone_lengths,
        durations=pad(durations, batch_first=True),
        prompt=torch.stack(prompts),
        frame_tokens=pad(tokens, batch_first=True),
        ids=[e.id for e in examples],
    )


def length_batches(
    lengths: Sequence[int], batch_frames: int, rng: random.Random
) -> Iterator[list[int]]:
    """Shuffled batches of similar-length items with at most ``batch_frames`` padded frames."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max([lengths[j] for j in current] + [lengths[i]])
        if current and longest * (len(current) + 1) > batch_frames:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    yield from batches
