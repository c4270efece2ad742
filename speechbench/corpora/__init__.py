"""Corpora: embedded mini corpora built offline, and loaders for public corpora.
Add one with a line here or through the ``speechbench.corpora`` entry point."""

BUILTINS: dict[str, str] = {
    "mini-en": "speechbench.corpora.mini_en:MiniEn",
    "tiny-synth": "speechbench.corpora.tiny_synth:TinySynth",
    "mini-sv": "speechbench.corpora.mini_sv:MiniSv",
    "mini-lid": "speechbench.corpora.mini_lid:MiniLid",
    "mini-tse": "speechbench.corpora.mini_tse:MiniTse",
    "mini-tse-2ch": "speechbench.corpora.mini_tse:MiniTse2ch",
    "librispeech": "speechbench.corpora.public.librispeech:LibriSpeech",
    "voxceleb1": "speechbench.corpora.public.voxceleb:VoxCeleb1",
    "voxlingua107": "speechbench.corpora.public.voxlingua:VoxLingua107",
    "aishell3": "speechbench.corpora.public.aishell3:Aishell3",
    "vctk": "speechbench.corpora.public.vctk:Vctk",
    "tau-asc2020-mobile": "speechbench.corpora.public.tau_asc:TauAsc2020Mobile",
    "fsdkaggle2019": "speechbench.corpora.public.fsdkaggle:FsdKaggle2019",
    "tau-nigens-dcase2020": "speechbench.corpora.public.tau_nigens:TauNigensDcase2020",
    "tmhint-qi": "speechbench.corpora.public.mos:TmhintQi",
    "bvcc": "speechbench.corpora.public.mos:Bvcc",
    "grid": "speechbench.corpora.public.grid:Grid",
    "libri2mix": "speechbench.corpora.public.librimix:Libri2Mix",
    "mini-mos": "speechbench.corpora.mini_mos:MiniMos",
    "mini-dcase": "speechbench.corpora.mini_dcase:MiniDcase",
    "mini-phone": "speechbench.corpora.mini_phone:MiniPhone",
    "mini-vc": "speechbench.corpora.mini_vc:MiniVc",
}
