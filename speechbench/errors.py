"""User-facing errors: the CLI prints their message as one line, with no traceback."""


class SpeechbenchError(Exception):
    """A problem the user can fix (bad key, missing corpus, corrupt file...)."""


class ConfigError(SpeechbenchError):
    """An unknown config key, a bad value, or an unknown plugin name."""


class AudioError(SpeechbenchError):
    """An audio file that cannot be used: corrupt, empty, stereo, NaN, wrong rate."""


class CorpusError(SpeechbenchError):
    """A corpus that is missing, partial, or cannot be prepared here."""


class WeightsUnavailableError(SpeechbenchError):
    """An upstream whose pretrained weights are not on this machine."""
