"""The real voices: Fish Fillets dialogue parsing, extra Asterisk voices, source checks."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from speakers_fakes import SPEAKERS, fake_sources

from speechbench.corpora import asterisk, debian, fillets, speakers
from speechbench.errors import CorpusError

LUA = r"""
dialogId("vit-m-hlava", "font_small", "What a head.")
dialogStr("Taková hlava.")

dialogId("vit-v-proc", "font_big", "Why \"this\"?")
dialogStr(
"Proč \"tohle\"?")

dialogId("vit-hs-klid1", "font_statue", "Citizens, please remain calm.")
dialogStr("Občané. Zachovejte klid.")

dialogId("m-obdivovat", "font_small", "Untranslated line.")

dialogId("z-c-1", "", "")
dialogStr("")
"""


def test_parse_dialogs_handles_multiline_escapes_and_missing_translations():
    dialogs = fillets.parse_dialogs(LUA)
    assert dialogs["vit-m-hlava"].text == "Taková hlava."
    assert dialogs["vit-v-proc"].text == 'Proč "tohle"?'
    assert dialogs["vit-hs-klid1"].font == "font_statue"
    assert dialogs["m-obdivovat"].text is None  # no Czech transcript for this line
    assert dialogs["z-c-1"].text is None


@pytest.mark.parametrize(
    ("dialog_id", "font", "character"),
    [
        ("vit-m-hlava", "font_small", "small-fish"),
        ("vit-v-proc", "font_big", "big-fish"),
        ("cil-m-hlaska1", "", "small-fish"),  # no dialogId: the file name decides
        ("vit-hs-klid1", "font_statue", "statue-hs"),
        ("sp-shout_small_00", "", None),
    ],
)
def test_character_of(dialog_id, font, character):
    assert fillets.character_of(dialog_id, font) == character


def test_choose_test_speakers_is_seeded_stratified_and_keeps_train(tmp_path):
    sources = fake_sources(tmp_path, SPEAKERS, per_speaker=2)
    test = speakers.choose_test_speakers(sources, 0.4, seed=0)
    assert test == speakers.choose_test_speakers(sources, 0.4, seed=0)
    asterisk_test = {s for s in test if s.startswith("asterisk")}
    fillets_test = test - asterisk_test
    assert len(asterisk_test) == 2 and len(fillets_test) == 1  # 5 and 3 speakers
    assert any(speakers.choose_test_speakers(sources, 0.4, s) != test for s in range(1, 6))


def test_decode_names_bad_sources(tmp_path):
    src = fake_sources(tmp_path, {"asterisk-a": ("en", "asterisk-en")}, per_speaker=1)[0]
    wav = speakers.decode(src)
    assert wav.dtype == np.float32 and abs(wav.size / 16000 - src.duration) < 0.01
    stereo = tmp_path / "stereo.wav"
    sf.write(str(stereo), np.stack([wav[:800], -wav[:800]], axis=1), 16000)
    assert np.abs(speakers.decode(stereo)).max() < 1e-6  # channels averaged
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(CorpusError, match="empty.wav: source audio is empty"):
        speakers.decode(empty)
    with pytest.raises(CorpusError, match="missing.wav: source audio missing"):
        speakers.decode(tmp_path / "missing.wav")
    src.source.write_bytes(b"\x00" * 100)
    with pytest.raises(CorpusError, match=rf"{src.source}.*asterisk-core-sounds-en-wav"):
        speakers.decode(src)


def test_missing_package_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("SPEECHBENCH_DATA", str(tmp_path))
    monkeypatch.delenv("SPEECHBENCH_DEB_DIR", raising=False)
    with pytest.raises(CorpusError, match="asterisk-prompt-no-such-voice"):
        debian.fetch_package("asterisk-prompt-no-such-voice")


def test_missing_fillets_folder_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(debian, "debian_root", lambda: tmp_path)
    for name in ("fillets-ng-data-cs", "fillets-ng-data"):
        (tmp_path / name).mkdir()
        (tmp_path / name / ".unpacked").write_text("fake\n")
    with pytest.raises(CorpusError, match="sound is missing from fillets-ng-data-cs"):
        fillets.fillets_lines("cs")
    with pytest.raises(CorpusError, match="no Fish Fillets dub for language 'de'"):
        fillets.fillets_lines("de")
    with pytest.raises(CorpusError, match="available: en, es, fr, it, ru, es-co"):
        asterisk.asterisk_prompts("pt")


@pytest.fixture
def real_debian(sb_shared):
    """The session's shared data folder (tests/conftest.py): one download per session."""
    return sb_shared


@pytest.mark.needs_apt
def test_extra_asterisk_voice_es_co(real_debian):
    prompts = asterisk.asterisk_prompts("es-co")
    assert len(prompts) > 200
    assert all(p.speaker == "july-jimenez" and not p.text_exact for p in prompts)
    sources = speakers.asterisk_sources(("es-co",))
    wav = speakers.decode(sources[0])  # raw GSM 06.10 at 8 kHz
    assert wav.size > 1000 and np.abs(wav).max() > 0.05


@pytest.mark.slow  # ~130 MB of Debian packages; test_parse_dialogs is the quick version
@pytest.mark.needs_apt
def test_fillets_dutch_dub(real_debian):
    lines = fillets.fillets_lines("nl")
    assert len(lines) > 1500
    assert {line.character for line in lines} == {"small-fish", "big-fish"}
    assert sum(line.text is not None for line in lines) > 0.9 * len(lines)
    line = next(x for x in lines if x.id == "let-m-divna")
    assert line.text == "Wat is dit voor raar schip?"
    assert len(fillets.dialogue_texts("de")) > 1000
    sources = speakers.fillets_sources(("nl",))
    wav = speakers.decode(sources[0])  # stereo 22.05 kHz Vorbis -> 16 kHz mono
    assert wav.ndim == 1 and abs(wav.size / 16000 - sources[0].duration) < 0.01


def test_corpora_are_registered():
    from speechbench import registry
    from speechbench.corpora.base import Corpus

    for name in ("mini-sv", "mini-lid", "mini-tse", "mini-tse-2ch"):
        cls = registry.get("corpora", name)
        assert issubclass(cls, Corpus) and cls.name == name and cls.sample_rate == 16000
