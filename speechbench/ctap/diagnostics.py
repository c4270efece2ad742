"""How well CTAP's joint space aligns speech and phonemes: frame-level retrieval.

For a pool of held-out utterances, every speech frame S_i queries all phoneme frames
P_j of the pool (ground-truth durations) by cosine similarity. We report

- ``frame_top1``: the retrieved P frame is exactly frame i (the contrastive objective);
- ``frame_within_1``: it is frame i or a neighbour of it in the same utterance;
- ``phone_top1``: the retrieved P frame carries the same phone as frame i (what matters
  for phone recognition; adjacent frames of one phone count as right);
- ``phone_top1_other_utt``: the same, retrieving only among the *other* utterances'
  P frames. Both encoders add absolute frame positions, so exact-frame retrieval can
  lean on matching positions; across utterances only phone content helps;
- the chance levels of both (uniform retrieval over the pool).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from speechbench.ctap.data import CTAPBatch, Example, collate
from speechbench.ctap.losses import valid_frames
from speechbench.ctap.model import CTAP


def _whole(examples: Sequence[Example], model: CTAP) -> CTAPBatch:
    import random

    longest = max(e.frame_token.shape[0] for e in examples)
    return collate(
        examples,
        model.features.mean,
        model.features.std,
        max_frames=longest,
        prompt_frames=1,
        rng=random.Random(0),
    )


@torch.no_grad()
def retrieval_accuracy(
    model: CTAP, examples: Sequence[Example], pool_size: int = 8
) -> dict[str, float]:
    """Speech -> phoneme frame retrieval over pools of ``pool_size`` utterances."""
    was_training = model.training
    model.eval()
    hits = {"frame_top1": 0, "frame_within_1": 0, "phone_top1": 0, "phone_top1_other_utt": 0}
    chance_frame = chance_phone = 0.0
    total = 0
    ordered = sorted(examples, key=lambda e: e.id)
    for start in range(0, len(ordered), pool_size):
        batch = _whole(ordered[start : start + pool_size], model)
        s, _, lengths = model.encode_speech(batch.mel, batch.mel_lengths)
        p, _, _ = model.encode_phonemes(batch.phones, batch.phone_lengths, batch.durations)
        s_flat = torch.nn.functional.normalize(valid_frames(s, lengths), dim=-1)
        p_flat = torch.nn.functional.normalize(valid_frames(p[:, : s.shape[1]], lengths), dim=-1)
        tokens = valid_frames(batch.frame_tokens[:, : s.shape[1], None], lengths)[:, 0]
        utt = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
        best = (s_flat @ p_flat.T).argmax(dim=1)
        own = torch.arange(s_flat.shape[0])
        n = s_flat.shape[0]
        hits["frame_top1"] += int((best == own).sum())
        hits["frame_within_1"] += int(((best - own).abs() <= 1).logical_and(utt[best] == utt).sum())
        hits["phone_top1"] += int((tokens[best] == tokens).sum())
        # the same, searching only other utterances' P frames: no position to match on
        sims = s_flat @ p_flat.T
        sims[utt[:, None] == utt[None, :]] = -float("inf")
        other = sims.argmax(dim=1)
        hits["phone_top1_other_utt"] += int((tokens[other] == tokens).sum())
        counts = Counter(tokens.tolist())
        chance_frame += 1.0  # one right frame out of n, for each of n queries
        chance_phone += sum(c * c for c in counts.values()) / n
        total += n
    model.train(was_training)
    result = {key: value / max(total, 1) for key, value in hits.items()}
    result["frame_chance"] = chance_frame / max(total, 1)
    result["phone_chance"] = chance_phone / max(total, 1)
    result["frames"] = float(total)
    result["utterances"] = float(len(ordered))
    return result


def compare_with_untrained(
    checkpoint: str | None = None,
    corpus: str = "mini-phone",
    split: str = "test",
    limit: int | None = None,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Retrieval accuracy of a CTAP checkpoint (default: the shipped one) and of an
    untrained model of the same config (same mel normalisation) on held-out speech,
    overall and per ``labels["source"]`` when the corpus marks sources (e.g. mini-phone's
    real "asterisk" recordings vs. "espeak-ng")."""
    from pathlib import Path

    from speechbench import registry
    from speechbench.ctap.data import load_examples
    from speechbench.ctap.pretrain import load_exported
    from speechbench.upstreams.ctap import SHIPPED

    trained, vocab = load_exported(Path(checkpoint) if checkpoint else SHIPPED)
    torch.manual_seed(seed)
    untrained = CTAP(trained.config).eval()
    untrained.features.load_state_dict(trained.features.state_dict())
    source = registry.get("corpora", corpus)()
    records = [r for r in source.split(split) if r.phones][:limit]
    examples = load_examples(records, source.root, vocab, trained.features, f"{corpus} {split}")
    groups = {"all": examples}
    origin = {r.id: r.labels.get("source") for r in records}
    for name in sorted({o for o in origin.values() if o}):
        groups[name] = [e for e in examples if origin[e.id] == name]
    return {
        f"{model_name}/{group}": retrieval_accuracy(model, items)
        for group, items in groups.items()
        for model_name, model in (("trained", trained), ("untrained", untrained))
    }


if __name__ == "__main__":  # python -m speechbench.ctap.diagnostics [checkpoint] [corpus] [split]
    import json
    import sys

    args = sys.argv[1:]
    print(
        json.dumps(
            compare_with_untrained(
                args[0] if len(args) > 0 and args[0] else None,
                args[1] if len(args) > 1 else "mini-phone",
                args[2] if len(args) > 2 else "test",
            ),
            indent=2,
        )
    )
