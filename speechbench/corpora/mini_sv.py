"""mini-sv: speaker verification on real voices (Asterisk prompts + Fish Fillets dubs).

Splits are the ones every corpus shares (speechbench.corpora.splits): the held-out
speakers (``splits.HELD_OUT_SPEAKERS``, chosen once by version 1's seeded stratified
draw) are test speakers, all their utterances test; the other speakers' recordings are
train or dev by their shared split (for a speaker-classification head), and their
shared-test recordings are left out, so train and test speakers stay disjoint and no
recording any other corpus tests on is trained on here. ``trials.txt`` pairs test
utterances, one line
``enroll_id test_id target|nontarget``, with as many target as non-target trials; each
test record repeats its trials in ``labels["trials"]`` as ``[enroll_id, label]``.
Allison speaks en and es, so some target trials are cross-lingual.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from tqdm import tqdm

from speechbench import atomic
from speechbench.corpora import speakers, splits
from speechbench.corpora.base import Corpus, Utterance
from speechbench.corpora.segments import condition_segments
from speechbench.corpora.speakers import SourceUtt

SEED = 0
TEST_FRACTION = 0.4  # of the speakers in each stratum (version 1; now splits.HELD_OUT_SPEAKERS)
MAX_PER_SPEAKER = 80
TRIALS_PER_UTTERANCE = 2  # target and non-target trials per test utterance, each


def select_utterances(sources: list[SourceUtt], per_speaker: int, seed: int) -> list[SourceUtt]:
    """At most ``per_speaker`` utterances of each speaker, seeded, in a stable order."""
    by_speaker: dict[str, list[SourceUtt]] = defaultdict(list)
    for src in sorted(sources, key=lambda s: s.id):
        by_speaker[src.speaker].append(src)
    rng = random.Random(seed)
    chosen = []
    for speaker in sorted(by_speaker):
        utts = by_speaker[speaker]
        chosen += sorted(rng.sample(utts, min(per_speaker, len(utts))), key=lambda s: s.id)
    return chosen


def make_trials(test: list[Utterance], per_utt: int, seed: int) -> list[tuple[str, str, str]]:
    """Balanced trials: for every test utterance, ``per_utt`` enrollments of the same
    speaker (never itself) and ``per_utt`` of other test speakers."""
    by_speaker: dict[str, list[str]] = defaultdict(list)
    for record in test:
        by_speaker[record.speaker].append(record.id)
    rng = random.Random(seed)
    trials = []
    for record in test:
        same = [u for u in by_speaker[record.speaker] if u != record.id]
        others = [u for s, ids in by_speaker.items() if s != record.speaker for u in ids]
        n = min(per_utt, len(same), len(others))
        trials += [(e, record.id, "target") for e in rng.sample(same, n)]
        trials += [(e, record.id, "nontarget") for e in rng.sample(others, n)]
    return trials


class MiniSv(Corpus):
    name = "mini-sv"
    # 3: test-side duration conditions (3 s / 1 s cuts); 2: the shared split (1: its own
    # seeded draw of dev utterances)
    version = "3"
    license = "CC-BY-SA-3.0, CC-BY-3.0, CC-BY-SA-3.0-IT, GPL-2, BSD-style (per source)"
    description = (
        "Speaker verification on real voices: Asterisk prompt voices (en/es Allison, June, "
        "Carlo, Menardi, ru, es-co July, fr Armelle) and Fish Fillets cs/nl characters; "
        "disjoint train/test speakers, balanced trial list."
    )
    sample_rate = speakers.SAMPLE_RATE
    provides = ("speaker", "language", "text")

    def sources(self) -> list[SourceUtt]:
        return speakers.real_sources()

    def build(self, root: Path) -> tuple[list[Utterance], str]:
        # a train speaker's shared-test recordings would put a seen speaker in test
        usable = [
            s
            for s in self.sources()
            if splits.speaker_held_out(s.speaker) or s.shared_split != "test"
        ]
        chosen = select_utterances(usable, MAX_PER_SPEAKER, SEED)
        records = []
        for src in tqdm(chosen, desc="mini-sv audio", unit="file"):
            split = src.shared_split
            rel = Path(split) / src.speaker / f"{src.id}.wav"
            speakers.convert(src, root / rel)
            labels = {
                "origin": src.origin,
                "text_exact": src.text_exact,
                "sources": [src.source_id],
            }
            if split != "test":
                labels["class"] = src.speaker  # speaker-ID target of the training head
            records.append(
                Utterance(
                    id=src.id,
                    path=rel.as_posix(),
                    sample_rate=self.sample_rate,
                    duration=speakers.duration_of(root / rel),
                    split=split,
                    speaker=src.speaker,
                    language=src.language,
                    text=src.text,
                    labels=labels,
                )
            )
        test = [r for r in records if r.split == "test"]
        trials = make_trials(test, TRIALS_PER_UTTERANCE, SEED)
        by_test: dict[str, list[list[str]]] = defaultdict(list)
        for enroll, test_id, label in trials:
            by_test[test_id].append([enroll, label])
        for record in test:
            record.labels["trials"] = by_test[record.id]
        # the same trials with the test side cut to 3 s and 1 s of its speech (the enrollment
        # stays full length); utterances with under 3 s of speech keep only the full condition
        cuts = []
        for record in tqdm(test, desc="mini-sv test cuts", unit="file"):
            record.labels["condition"] = "full"
            segments = condition_segments(root, record, self.sample_rate, record.speaker)
            for segment in segments or []:
                cuts.append(segment)
                trials += [(e, segment.id, lab) for e, lab in segment.labels["trials"]]
        records += cuts
        atomic.write_text(root / "trials.txt", "".join(f"{e} {t} {lab}\n" for e, t, lab in trials))
        origins = {src.origin for src in chosen}
        return records, speakers.attribution(self.name, origins)
