"""Upstreams: one module per family. Add an in-tree one by adding a line here;
a third-party package adds one through the ``speechbench.upstreams`` entry point."""

BUILTINS: dict[str, str] = {
    "mfcc": "speechbench.upstreams.spectral:MFCC",
    "fbank": "speechbench.upstreams.spectral:Fbank",
    "ctap": "speechbench.upstreams.ctap:CTAPUpstream",
}
