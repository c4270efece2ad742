"""The 39-phone inventory and the mappings onto it (espeak IPA, ARPAbet, festival, piper)."""

from __future__ import annotations

import pytest

from speechbench.corpora.festival import radio_to_phones, read_segs
from speechbench.corpora.phones import (
    ARPABET_TO_PHONE,
    PHONES,
    SILENCE,
    arpabet_to_phone,
    espeak_to_phones,
    map_intervals,
    phone_sequence,
)
from speechbench.corpora.piper_tts import group_symbols
from speechbench.corpora.prompts import split_sentences
from speechbench.errors import CorpusError


def test_inventory_is_the_39_cmudict_phones() -> None:
    assert len(PHONES) == len(set(PHONES)) == 39
    assert SILENCE not in PHONES
    assert arpabet_to_phone("AH0") == arpabet_to_phone("ah") == "ʌ"
    assert arpabet_to_phone("SIL") == SILENCE
    with pytest.raises(CorpusError, match="QQ"):
        arpabet_to_phone("QQ")


def test_espeak_normalisation_drops_stress_and_length() -> None:
    assert espeak_to_phones("ˈiː") == ("i",)
    assert espeak_to_phones("ˌɑː") == ("ɑ",)
    assert espeak_to_phones("ə") == espeak_to_phones("ɐ") == ("ʌ",)
    assert espeak_to_phones("ɾ") == ("t",)
    assert espeak_to_phones("ˈɔːɹ") == ("ɔ", "ɹ")
    with pytest.raises(CorpusError, match="ʘ"):
        espeak_to_phones("ʘ")


def test_split_phones_share_their_interval_and_silences_merge() -> None:
    mapped = map_intervals([["sil", 0.0, 0.1], ["sil", 0.1, 0.2], ["ɔːɹ", 0.2, 0.4]])
    assert [p for p, _, _ in mapped] == ["sil", "ɔ", "ɹ"]
    times = [t for _, s, e in mapped for t in (s, e)]
    assert times == pytest.approx([0.0, 0.2, 0.2, 0.3, 0.3, 0.4])
    assert phone_sequence(mapped) == ["ɔ", "ɹ"]


def test_festival_radio_phones(tmp_path) -> None:
    segs = tmp_path / "x.segs"
    segs.write_text("#\n0.2200 100 pau\n0.3000 100 dh\n0.3500 100 ax\n0.5000 100 en\n")
    intervals = map_intervals(read_segs(segs), radio_to_phones)
    assert [p for p, _, _ in intervals] == ["sil", "ð", "ʌ", "ʌ", "n"]
    assert intervals[0][1:] == [0.0, 0.22]
    assert all(p in PHONES or p == SILENCE for p, _, _ in intervals)
    assert set(ARPABET_TO_PHONE.values()) == set(PHONES)


def test_piper_symbols_regroup_into_phonemes() -> None:
    symbols = [("^", 512), ("h", 256), ("ˈ", 256), ("o", 512), ("ʊ", 256), (" ", 256)]
    symbols += [("m", 512), ("ˈ", 256), ("e", 256), ("ɪ", 256), ("ː", 256), ("$", 256)]
    units = group_symbols(symbols)
    # stress marks go to the next phone, length marks and spaces to the previous one
    assert units == [["sil", 512], ["h", 256], ["oʊ", 1280], ["m", 512], ["eɪ", 1024], ["sil", 256]]
    assert sum(n for _, n in units) == sum(n for _, n in symbols)  # no sample lost


def test_sentence_splits_are_deterministic_and_complete() -> None:
    ids = [f"s{i:03d}" for i in range(50)]
    first = split_sentences(ids, "mini-phone-1-0")
    assert first == split_sentences(list(reversed(ids)), "mini-phone-1-0")
    assert first != split_sentences(ids, "mini-phone-1-1")
    counts = {s: list(first.values()).count(s) for s in ("train", "dev", "test")}
    assert counts == {"train": 40, "dev": 5, "test": 5}
