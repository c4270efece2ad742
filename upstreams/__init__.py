"""Upstreams: one module per family. Add an in-tree one by adding a line here;
a third-party package adds one through the ``speechbench.upstreams`` entry point."""

BUILTINS: dict[str, str] = {
    "mfcc": "speechbench.upstreams.spectral:MFCC",
    "fbank": "speechbench.upstreams.spectral:Fbank",
    "mel128": "speechbench.upstreams.spectral:Mel128",
    "hubert": "speechbench.upstreams.ssl:HuBERT",
    "wavlm": "speechbench.upstreams.ssl:WavLM",
    "hubert-mini": "speechbench.upstreams.ssl:HuBERTMini",
    "wavlm-mini": "speechbench.upstreams.ssl:WavLMMini",
    "wav2vec2": "speechbench.upstreams.ssl:Wav2Vec2",
    "whisper": "speechbench.upstreams.whisper:Whisper",
    "whisper-tiny-en": "speechbench.upstreams.whisper:WhisperTinyEn",
    "ge2e": "speechbench.upstreams.ge2e:GE2E",
    "ge2e-partials": "speechbench.upstreams.ge2e:GE2EPartials",
    "ivector": "speechbench.upstreams.ivector:IVector",
    "ctap": "speechbench.upstreams.ctap:CTAPUpstream",
}
