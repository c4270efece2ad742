"""Compare CTAP checkpoints on speech that none of them was trained on.

``python -m speechbench.ctap.compare [--split dev,test] NAME=CHECKPOINT ...`` scores each
checkpoint on mini-phone's current ``test`` split (or the splits named), restricted to
utterances whose sentence was outside the ``train`` split of mini-phone version 1 as well (the first
checkpoint's training data), so the old and the new model are both measured on held-out
text, voices and recordings. mini-phone 2 keeps version 1's voices, so its test voices
are unseen by both. Reported per group (all, real Asterisk speech, espeak-ng): the
retrieval scores of :mod:`speechbench.ctap.diagnostics` and the frame-level contrastive
loss on the same pools of 8 utterances (each model with its own learned temperature).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from speechbench import registry
from speechbench.corpora.prompts import split_sentences
from speechbench.ctap.data import Example, load_examples
from speechbench.ctap.diagnostics import _whole, retrieval_accuracy
from speechbench.ctap.losses import frame_contrastive_loss
from speechbench.ctap.model import CTAP
from speechbench.ctap.pretrain import load_exported


@torch.no_grad()
def held_out_contrastive(model: CTAP, examples: Sequence[Example], pool_size: int = 8) -> float:
    """Mean frame-level InfoNCE (ground-truth durations) over pools of held-out speech."""
    model.eval()
    total, frames = 0.0, 0
    ordered = sorted(examples, key=lambda e: e.id)
    for start in range(0, len(ordered), pool_size):
        batch = _whole(ordered[start : start + pool_size], model)
        s, _, lengths = model.encode_speech(batch.mel, batch.mel_lengths)
        p, _, _ = model.encode_phonemes(batch.phones, batch.phone_lengths, batch.durations)
        n = int(lengths.sum())
        loss = frame_contrastive_loss(s, p[:, : s.shape[1]], lengths, model.logit_scale)
        total += float(loss) * n
        frames += n
    return total / max(frames, 1)


def held_out_records(corpus: str = "mini-phone", split: str = "test") -> list:
    source = registry.get("corpora", corpus)()
    records = [r for r in source.manifest() if r.phones]
    sentences = sorted({r.labels["sentence"] for r in records})
    v1 = split_sentences(sentences, "mini-phone-1-0")  # version 1's split of the same texts
    wanted = set(split.split(","))
    return [r for r in records if r.split in wanted and v1[r.labels["sentence"]] != "train"]


def compare(checkpoints: dict[str, Path], corpus: str = "mini-phone", split: str = "test"):
    source = registry.get("corpora", corpus)()
    records = held_out_records(corpus, split)
    out: dict[str, dict] = {}
    for name, path in checkpoints.items():
        model, vocab = load_exported(path)
        examples = load_examples(records, source.root, vocab, model.features, name)
        origin = {r.id: r.labels.get("source") for r in records}
        groups = {"all": examples}
        for group in sorted({o for o in origin.values() if o}):
            groups[group] = [e for e in examples if origin[e.id] == group]
        for group, items in groups.items():
            result = retrieval_accuracy(model, items)
            result["contrastive"] = held_out_contrastive(model, items)
            out[f"{name}/{group}"] = result
    return out


if __name__ == "__main__":  # [--split dev,test] NAME=CHECKPOINT ...
    torch.set_num_threads(1)  # more threads on a loaded shared machine crawl
    args = sys.argv[1:]
    split = "test"
    if args[:1] == ["--split"]:
        split, args = args[1], args[2:]
    pairs = dict(arg.split("=", 1) for arg in args)
    print(json.dumps(compare({k: Path(v) for k, v in pairs.items()}, split=split), indent=2))
