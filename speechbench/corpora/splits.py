"""One split per source recording, shared by every corpus (issue 19).

Every real recording that a corpus uses has a *source id*, ``PACKAGE:FILE``:
``asterisk-core-sounds-en-wav:vm-goodbye`` (an Asterisk prompt),
``fillets-ng-data-cs:city/vit-m-hlava`` (a Fish Fillets line),
``sound-theme-freedesktop:freedesktop/bell`` (a sound file). Texts that several
speech corpora read aloud are sources too, ``text:SENTENCE_ID``. A record lists the
sources its audio (or text) is made of in ``labels["sources"]``: one for a plain
utterance, several for a mixture.

The split of a source is a pure function of its identity, so every corpus computes the
same split for it and nothing any corpus writes to train is in another corpus's dev or
test:

1. **Speaker first.** A recording of a *held-out speaker* (:data:`HELD_OUT_SPEAKERS`,
   or for an unlisted speaker a hash of the speaker id) is ``test``, everywhere. This is
   what lets speaker verification (mini-sv), target speaker extraction (mini-tse) and
   language ID (mini-lid) test on voices never heard in training.
2. **Recording next.** A recording of any other speaker is train/dev/test 80/10/10 by
   a hash of its source id (:func:`recording_split`).
3. **Sound files** (no speaker) are split within their event class, in a hash order,
   60/20/20 (:func:`sound_splits`), so every class with two files has a test file.

A corpus resolves its own constraints on top (same text in one split, train speakers
disjoint from test speakers, every source of a mixture in the mixture's split) and
drops an item that cannot satisfy both: it never moves a recording to another split.
:func:`resolve_group` is the rule for "these items must share one split".
:func:`find_leaks` is the check over manifests (``speechbench data check-leaks``).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence

SPLIT_RANK = {"test": 0, "dev": 1, "train": 2}  # most held out first

# The held-out (test-only) voices. Chosen once by mini-sv version 1's seeded, stratified
# draw (40 % of the Asterisk voices, of the Fillets main fish and of the minor roles) and
# frozen here so the split is a function of the speaker id alone. Every language keeps a
# train voice (Allison for en/es, June fr, Menardi it, ru's voice, the small fish cs/nl).
HELD_OUT_SPEAKERS = frozenset(
    {
        "asterisk-armelle",
        "asterisk-carlo",
        "asterisk-july-jimenez",
        "fillets-cs-big-fish",
        "fillets-cs-statue-hs",
        "fillets-nl-big-fish",
    }
)
OPEN_SPEAKERS = frozenset(
    {
        "asterisk-allison",
        "asterisk-june",
        "asterisk-menardi",
        "asterisk-ivrvoice-ru",
        "fillets-cs-small-fish",
        "fillets-cs-lightgrey-x",
        "fillets-cs-parrot-pap",
        "fillets-nl-small-fish",
    }
)
HELD_OUT_FRACTION = 0.4  # for speakers in neither list (new sources, test fakes)
RECORDING_FRACTIONS = (0.8, 0.1, 0.1)  # train, dev, test of an open speaker's recordings
SOUND_PATTERN = ("train", "test", "train", "dev", "train")  # by hash rank within a class


def _unit(key: str) -> float:
    """A uniform number in [0, 1) from a key (sha1, stable across machines)."""
    return int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:13], 16) / 16**13


def source_id(package: str, name: str) -> str:
    """``PACKAGE:FILE``, the identity every corpus keys a recording by."""
    return f"{package}:{name}"


def text_source(sentence_id: str) -> str:
    """The source id of a text read aloud by several corpora (e.g. ``text:s1a2b3c4d``)."""
    return f"text:{sentence_id}"


def speaker_held_out(speaker: str | None) -> bool:
    """True when every recording of ``speaker`` is test-only, in every corpus."""
    if speaker is None:
        return False
    if speaker in HELD_OUT_SPEAKERS:
        return True
    if speaker in OPEN_SPEAKERS:
        return False
    return _unit(f"speaker:{speaker}") < HELD_OUT_FRACTION


def recording_split(source: str, speaker: str | None = None) -> str:
    """The split of one real recording: test for a held-out speaker, else 80/10/10 by
    a hash of its source id."""
    if speaker_held_out(speaker):
        return "test"
    u = _unit(f"recording:{source}")
    _, dev, test = RECORDING_FRACTIONS
    return "test" if u < test else "dev" if u < test + dev else "train"


def sound_splits(keys_by_class: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """Source id -> split for sound files, within each class: in sha1 order the files
    follow ``SOUND_PATTERN`` (train, test, train, dev, train, ...). Pass the whole
    package contents (``sounds.event_sources()``) so every corpus gets the same answer."""
    out: dict[str, str] = {}
    for _, keys in sorted(keys_by_class.items()):
        ordered = sorted(set(keys), key=lambda k: hashlib.sha1(k.encode()).hexdigest())
        for i, key in enumerate(ordered):
            out[key] = SOUND_PATTERN[i % len(SOUND_PATTERN)]
    return out


def resolve_group(splits: Sequence[str]) -> str:
    """The one split of items that must stay together (same text, same mixture): the
    most held-out of their own splits. Members with another split are dropped by the
    caller, so a group never pulls a test recording into train."""
    return min(splits, key=SPLIT_RANK.__getitem__)


def group_splits(
    items: Iterable[tuple[Hashable, Hashable, str]],
) -> tuple[dict[Hashable, str], set[Hashable]]:
    """``(item, group, own split)`` triples -> ({group: split}, items to drop)."""
    members: dict[Hashable, list[tuple[Hashable, str]]] = defaultdict(list)
    for item, group, split in items:
        members[group].append((item, split))
    chosen = {g: resolve_group([s for _, s in m]) for g, m in members.items()}
    dropped = {item for g, m in members.items() for item, s in m if s != chosen[g]}
    return chosen, dropped


def find_leaks(
    manifests: Mapping[str, Iterable[object]], pretraining: Mapping[str, Iterable[str]] = {}
) -> list[str]:
    """Every leak in a set of manifests, as readable lines (empty when there is none).

    ``manifests`` maps a corpus name to its records (anything with ``split`` and
    ``labels["sources"]``); ``pretraining`` maps a pretraining set's name to the source
    ids it trained on. A leak is a source in the train split of one corpus (or in a
    pretraining set) and in the dev or test split of any corpus, or in dev of one and
    test of another.
    """
    where: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for corpus, records in manifests.items():
        for record in records:
            labels = getattr(record, "labels", None) or {}
            for src in labels.get("sources", ()) or ():
                where[src][record.split].add(corpus)
    for name, sources in pretraining.items():
        for src in sources:
            where[src]["train"].add(f"pretrain:{name}")
    leaks = []
    for src in sorted(where):
        splits = where[src]
        if len(splits) > 1:
            parts = "; ".join(f"{s} in {', '.join(sorted(splits[s]))}" for s in sorted(splits))
            leaks.append(f"{src}: {parts}")
    return leaks


def assign_group_splits(
    groups: Sequence[Hashable],
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[Hashable, str]:
    """Map each distinct group to train/dev/test by a seeded hash order.

    For corpora whose items are not shared sources (synthetic speech of private text).
    Corpora built from shared recordings use :func:`recording_split` instead: this
    function's order depends on the seed, so two corpora would split the same
    recordings differently (mini-en version 1 did, see tests/test_splits_leaks.py).
    """
    distinct = sorted(set(groups), key=lambda g: hashlib.sha1(f"{seed}:{g}".encode()).hexdigest())
    n = len(distinct)
    n_test = max(1, round(fractions[2] * n)) if n >= 3 else 0
    n_dev = max(1, round(fractions[1] * n)) if n >= 3 else 0
    assignment: dict[Hashable, str] = {}
    for i, group in enumerate(distinct):
        assignment[group] = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
    return assignment
