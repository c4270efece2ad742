"""Has a masked-prediction model collapsed? Per-layer similarity of frames within an utterance.

``python -m speechbench.pretraining.diagnostics FAMILY=CHECKPOINT ... [--utterances N]``
(e.g. ``hubert=upstreams/checkpoints/hubert-mini.pt``) loads each checkpoint through the
``hubert`` / ``wavlm`` upstream (s3prl's loaders) and prints, per layer, the mean cosine
similarity between different frames of the same held-out utterance (mini-phone dev).
A model that predicts only the cluster prior maps every frame to the same vector
(similarity ~1 in its upper layers) and its layers carry no frame information; a
random-weight twin of the same architecture stays well below that. This is how the
first hubert-mini (alpha = 1) was found collapsed (docs/pretraining.md).
"""

from __future__ import annotations

import argparse

import torch

import speechbench._torchaudio  # noqa: F401  (s3prl imports torchaudio's old API)
from speechbench import audio, registry


def frame_similarity(hidden: torch.Tensor, frames: int) -> float:
    """Mean cosine similarity between distinct frames of one utterance (T x D)."""
    unit = torch.nn.functional.normalize(hidden[:frames].float(), dim=-1)
    similarity = unit @ unit.T
    off_diagonal = similarity.sum() - similarity.diagonal().sum()
    return float(off_diagonal / max(frames * (frames - 1), 1))


@torch.no_grad()
def layer_similarities(family: str, checkpoint: str, utterances: int) -> list[float]:
    upstream_cls = registry.get("upstreams", family)
    upstream = upstream_cls(upstream_cls.Options(path=checkpoint))
    corpus = registry.get("corpora", "mini-phone")()
    records = [r for r in corpus.prepare() if r.split == "dev"][:utterances]
    totals: list[float] = []
    for record in records:
        wav = audio.load(corpus.root / record.path, upstream.sample_rate)
        hidden, lengths = upstream.forward(wav[None], torch.tensor([wav.numel()]))
        values = [frame_similarity(h[0], int(lengths[0])) for h in hidden]
        totals = [a + b for a, b in zip(totals, values, strict=True)] if totals else values
    return [t / max(len(records), 1) for t in totals]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="FAMILY=CHECKPOINT (hubert or wavlm)")
    parser.add_argument("--utterances", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for spec in args.models:
        family, _, checkpoint = spec.partition("=")
        values = layer_similarities(family, checkpoint, args.utterances)
        print(f"{spec}: " + " ".join(f"L{i} {v:.3f}" for i, v in enumerate(values)))


if __name__ == "__main__":
    main()
