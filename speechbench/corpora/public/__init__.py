"""Loaders for public corpora the user has a local copy of (one module per corpus or family).

Each is a :class:`~speechbench.corpora.public.local.LocalCorpus`: the path comes from an
environment variable, the layout is checked, lhotse's recipe parses it where one fits,
and the result is the same manifest as every other corpus. Splits per corpus:
docs/corpora_public.md.
"""
