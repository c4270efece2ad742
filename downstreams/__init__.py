"""Downstream tasks: one module per task family. Add an in-tree one with a line here;
a third-party package adds one through the ``speechbench.downstreams`` entry point."""

BUILTINS: dict[str, str] = {
    "asr": "speechbench.downstreams.asr:ASR",
}
