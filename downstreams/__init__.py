"""Downstream tasks: one module per task family. Add an in-tree one with a line here;
a third-party package adds one through the ``speechbench.downstreams`` entry point."""

BUILTINS: dict[str, str] = {
    "asr": "speechbench.downstreams.asr:ASR",
    "sv": "speechbench.downstreams.sv:SpeakerVerification",
    "sv-gmm-ubm": "speechbench.downstreams.gmm_ubm:GmmUbmVerification",
    "lid": "speechbench.downstreams.lid:LanguageID",
    "mos": "speechbench.downstreams.mos:MTQNetTask",
    "mos-ssl": "speechbench.downstreams.mos:MosSsl",
    "tse": "speechbench.downstreams.tse:TargetSpeakerExtraction",
    "asc": "speechbench.downstreams.scenes:AcousticScenes",
    "tag": "speechbench.downstreams.scenes:AudioTagging",
    "sed": "speechbench.downstreams.scenes:SoundEventDetection",
    "dcasenet": "speechbench.downstreams.dcasenet:DCASENet",
    "vc": "speechbench.downstreams.vc:VoiceConversion",
    "tts": "speechbench.downstreams.tts:TextToSpeech",
}
