"""Downstream tasks: one module per task family. Add an in-tree one with a line here;
a third-party package adds one through the ``speechbench.downstreams`` entry point."""

BUILTINS: dict[str, str] = {
    "asr": "speechbench.downstreams.asr:ASR",
    "sv": "speechbench.downstreams.sv:SpeakerVerification",
    "sv-gmm-ubm": "speechbench.downstreams.gmm_ubm:GmmUbmVerification",
    "lid": "speechbench.downstreams.lid:LanguageID",
    "vc": "speechbench.downstreams.vc:VoiceConversion",
    "tts": "speechbench.downstreams.tts:TextToSpeech",
}
