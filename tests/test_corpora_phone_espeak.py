"""espeak-ng synthesis: exact phone timing, determinism, inventory mapping, bad voices."""

from __future__ import annotations

import numpy as np
import pytest

from speechbench.corpora import espeak
from speechbench.corpora.phones import PHONES, SILENCE, map_intervals, phone_sequence
from speechbench.errors import CorpusError

TEXT = "please enter your mailbox number followed by the pound key"


@pytest.fixture(scope="module")
def spoken() -> espeak.Synthesis:
    return espeak.synthesize(TEXT, "en-us+m3", rate=170, pitch=50)


def test_phones_tile_the_audio_monotonically(spoken: espeak.Synthesis) -> None:
    phones = spoken.phones
    assert spoken.sample_rate == espeak.SAMPLE_RATE == 22050
    assert phones[0][1] == 0.0
    assert phones[-1][2] == pytest.approx(spoken.duration, abs=1e-9)
    for (_, s0, e0), (_, s1, e1) in zip(phones, phones[1:], strict=False):
        assert s0 < e0 == s1 < e1  # no gap, no overlap, no zero length
    speech = [e - s for name, s, e in phones if name != SILENCE]
    assert len(speech) >= 35  # ~40 phonemes in the sentence
    assert min(speech) > 0.003 and max(speech) < 0.5  # plausible phone durations
    assert 0.04 < np.mean(speech) < 0.15


def test_phone_times_match_the_audio_energy(spoken: espeak.Synthesis) -> None:
    """Independent check of the event times: silence intervals are quiet, phones are not."""
    audio, sr = spoken.audio, spoken.sample_rate

    def rms(start: float, end: float) -> float:
        segment = audio[int(start * sr) : int(end * sr)]
        return float(np.sqrt(np.mean(segment**2))) if segment.size else 0.0

    lead_in = spoken.phones[0]
    assert lead_in[0] == SILENCE
    vowels = [p for p in spoken.phones if p[0].strip("ˈˌ") in ("iː", "ɛ", "eɪ", "ɑː", "ʌ")]
    assert vowels
    loudest_silence = max(rms(s, e) for n, s, e in spoken.phones if n == SILENCE)
    assert loudest_silence < 0.2 * np.mean([rms(s, e) for _, s, e in vowels])


def test_words_follow_the_text_and_lie_inside_the_phones(spoken: espeak.Synthesis) -> None:
    assert [w for w, _, _ in spoken.words] == TEXT.split()
    starts = [s for _, s, _ in spoken.words]
    assert starts == sorted(starts)
    assert all(0 <= s < e <= spoken.duration for _, s, e in spoken.words)


def test_same_arguments_give_the_same_samples_whatever_came_before() -> None:
    first = espeak.synthesize("thank you", "en-us+f2", rate=180, pitch=60, seed=3)
    espeak.synthesize("something else entirely to change the library state", "en-us+m7")
    again = espeak.synthesize("thank you", "en-us+f2", rate=180, pitch=60, seed=3)
    assert np.array_equal(first.audio, again.audio)
    assert first.phones == again.phones
    faster = espeak.synthesize("thank you", "en-us+f2", rate=300, pitch=60, seed=3)
    assert faster.duration < first.duration


def test_every_phone_maps_onto_the_inventory(spoken: espeak.Synthesis) -> None:
    mapped = map_intervals(spoken.phones)
    assert set(phone_sequence(mapped)) <= set(PHONES)
    assert mapped[0][1] == 0.0 and mapped[-1][2] == pytest.approx(spoken.duration)
    assert phone_sequence(mapped)[:4] == ["p", "l", "i", "z"]


def test_unknown_voice_is_named() -> None:
    with pytest.raises(CorpusError, match="no-such-voice"):
        espeak.synthesize("hello", "no-such-voice")
