"""Corpora: embedded mini corpora built offline, and loaders for public corpora.
Add one with a line here or through the ``speechbench.corpora`` entry point."""

BUILTINS: dict[str, str] = {
    "mini-en": "speechbench.corpora.mini_en:MiniEn",
    "tiny-synth": "speechbench.corpora.tiny_synth:TinySynth",
    "mini-sv": "speechbench.corpora.mini_sv:MiniSv",
    "mini-lid": "speechbench.corpora.mini_lid:MiniLid",
    "mini-tse": "speechbench.corpora.mini_tse:MiniTse",
    "mini-tse-2ch": "speechbench.corpora.mini_tse:MiniTse2ch",
}
