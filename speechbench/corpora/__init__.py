"""Corpora: embedded mini corpora built offline, and loaders for public corpora.
Add one with a line here or through the ``speechbench.corpora`` entry point."""

BUILTINS: dict[str, str] = {
    "mini-en": "speechbench.corpora.mini_en:MiniEn",
    "tiny-synth": "speechbench.corpora.tiny_synth:TinySynth",
    "mini-phone": "speechbench.corpora.mini_phone:MiniPhone",
    "mini-vc": "speechbench.corpora.mini_vc:MiniVc",
}
