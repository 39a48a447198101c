"""The exit codes every ``shaledb`` command uses (README, "Exit codes").

0: done (for ``check``: the database is healthy). 1: failed, or ``check`` found damage.
2: a usage error (click's own code for one) or a directory locked by another process.
"""

from __future__ import annotations

from shaledb.errors import LockedError, ShaleDBError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_LOCKED = 2
#: Options that do not go together (click's own code for a usage error).
EXIT_USAGE = 2
#: After Ctrl-C stopped a script, as shells report death by SIGINT.
INTERRUPTED = 130


def exit_code_for(exc: ShaleDBError) -> int:
    """The exit code for a command stopped by ``exc``: locked 2, anything else 1."""
    return EXIT_LOCKED if isinstance(exc, LockedError) else EXIT_FAILED
