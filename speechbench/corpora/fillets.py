"""Voice-acted dialogue of the game Fish Fillets NG (Debian, GPL-2).

``fillets-ng-data-cs`` / ``-nl`` hold the Czech and Dutch dubs (Ogg Vorbis, 22.05 or
44.1 kHz, some stereo); ``fillets-ng-data`` holds the lua scripts. Every line is
declared in ``script/LEVEL/dialogs_LANG.lua`` (or ``script/share/GROUP_dialogs_LANG.lua``)
as ``dialogId("id", "font_x", "english")`` followed by ``dialogStr("translation")``.
The font names the character who speaks (``font_small``: the small fish, ``font_big``:
the big fish, ``font_statue``, ``font_parrot``...); the audio file is
``sound/LEVEL/LANG/id.ogg``. A line without a ``dialogStr`` has no transcript in that
language (``text`` is None). The same scripts give real text in eleven languages,
which :func:`dialogue_texts` offers to speech synthesis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from speechbench.corpora.debian import fetch_package
from speechbench.errors import CorpusError

LICENSE = "GPL-2"
CREDIT = (
    "Fish Fillets NG (Ivo and Pavel Danihelka, ALTAR interactive and translators), "
    "http://fillets.sourceforge.net"
)
GAME_DIR = "usr/share/games/fillets-ng"
VOICED_LANGUAGES = ("cs", "nl")
# A character needs this many transcribed lines to count as a speaker with enough data.
MIN_LINES = 15

# dialogId("id", "font" or nil, "english") then an optional dialogStr("translation");
# lua strings here are double-quoted with backslash escapes (hand-written: no lua parser
# library is needed for this one declarative pattern).
_LUA_STRING = r'"((?:[^"\\]|\\.)*)"'
_DIALOG = re.compile(
    r"dialogId\(\s*"
    + _LUA_STRING
    + r"\s*,\s*(?:"
    + _LUA_STRING
    + r"|nil)\s*,\s*"
    + _LUA_STRING
    + r"\s*\)(?:\s*dialogStr\(\s*"
    + _LUA_STRING
    + r"\s*\))?",
    re.S,
)
_ESCAPES = {'\\"': '"', "\\'": "'", "\\n": " ", "\\\\": "\\"}


@dataclass(frozen=True)
class Line:
    id: str  # dialog id, e.g. "vit-m-hlava"
    level: str  # e.g. "city" or "share/border"
    path: Path  # the .ogg file
    language: str
    character: str  # "small-fish", "big-fish", "statue-hs"...
    text: str | None


@dataclass(frozen=True)
class Dialog:
    id: str
    font: str
    english: str
    text: str | None


def _unescape(text: str) -> str:
    for escaped, plain in _ESCAPES.items():
        text = text.replace(escaped, plain)
    return " ".join(text.split())


def parse_dialogs(source: str) -> dict[str, Dialog]:
    """All dialog declarations of one lua file, keyed by id."""
    dialogs = {}
    for match in _DIALOG.finditer(source):
        dialog_id, font, english, translated = match.groups()
        text = _unescape(translated) if translated else None
        dialogs[dialog_id] = Dialog(dialog_id, font or "", _unescape(english), text or None)
    return dialogs


def character_of(dialog_id: str, font: str) -> str | None:
    """Who speaks: the font when there is one, else the file name's ``-m-``/``-v-`` code."""
    parts = dialog_id.split("-")
    code = parts[1] if len(parts) > 2 else ""
    if font == "font_small" or (not font and code == "m"):
        return "small-fish"
    if font == "font_big" or (not font and code == "v"):
        return "big-fish"
    if font.startswith("font_") and code:
        # several minor characters share a font colour; the id code tells them apart
        return f"{font.removeprefix('font_')}-{code}"
    return None


def _script_for(script_root: Path, level: str, language: str) -> Path:
    if level.startswith("share/"):
        return script_root / "share" / f"{level.split('/', 1)[1]}_dialogs_{language}.lua"
    return script_root / level / f"dialogs_{language}.lua"


def fillets_lines(language: str) -> list[Line]:
    """Every voiced line of one dub whose speaker is known, fetched from Debian if needed."""
    if language not in VOICED_LANGUAGES:
        raise CorpusError(
            f"no Fish Fillets dub for language {language!r}; available: "
            f"{', '.join(VOICED_LANGUAGES)}"
        )
    sound_root = fetch_package(f"fillets-ng-data-{language}") / GAME_DIR / "sound"
    script_root = fetch_package("fillets-ng-data") / GAME_DIR / "script"
    if not sound_root.is_dir():
        raise CorpusError(f"{sound_root} is missing from fillets-ng-data-{language}")
    if not script_root.is_dir():
        raise CorpusError(f"{script_root} is missing from fillets-ng-data")
    scripts: dict[str, dict[str, Dialog]] = {}
    lines = []
    for ogg in sorted(sound_root.rglob(f"{language}/*.ogg")):
        level = ogg.parent.parent.relative_to(sound_root).as_posix()
        if level not in scripts:
            script = _script_for(script_root, level, language)
            source = script.read_text("utf-8", errors="replace") if script.exists() else ""
            scripts[level] = parse_dialogs(source)
        dialog = scripts[level].get(ogg.stem)
        character = character_of(ogg.stem, dialog.font if dialog else "")
        if character is None:
            continue
        text = dialog.text if dialog else None
        lines.append(Line(ogg.stem, level, ogg, language, character, text))
    if not lines:
        raise CorpusError(f"no voiced lines found under {sound_root}")
    return lines


def dialogue_texts(language: str) -> list[str]:
    """Distinct translated lines of the game in ``language`` (real text for synthesis)."""
    script_root = fetch_package("fillets-ng-data") / GAME_DIR / "script"
    files = sorted(script_root.glob(f"*/dialogs_{language}.lua"))
    files += sorted(script_root.glob(f"share/*_dialogs_{language}.lua"))
    if not files:
        raise CorpusError(f"fillets-ng-data has no dialogs in language {language!r}")
    texts: dict[str, None] = {}
    for path in files:
        for dialog in parse_dialogs(path.read_text("utf-8", errors="replace")).values():
            if dialog.text:
                texts.setdefault(dialog.text)
    return list(texts)
