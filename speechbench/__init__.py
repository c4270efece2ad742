"""speechbench: which speech/audio representation serves which task.

The pipeline is a chain of plain function calls, every box replaceable through
the registry: corpus manifest -> upstream (frozen) -> feature cache ->
downstream head -> predictions -> metrics -> results store -> leaderboard.
"""

__version__ = "0.1.0"
