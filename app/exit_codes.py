"""Exit codes of the ``credit-score`` commands, in one place: the CLI exits with them, training names the
ones it causes, and the retrain job runners read a finished training run's outcome from them.

A leaf module: it imports nothing of ours, so every layer may use it.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    DATA = 1  # the data was refused (validation, unreadable source); also any other error the user can act on
    USAGE = 2  # bad arguments or configuration
    GATE = 3  # a model was trained but failed the quality gate
    REJECTED = 4  # batch scoring: some rows failed the schema (written to --rejects); the others were scored


# the names callers have used (app.training.train.EXIT_DATA, app.cli.EXIT_USAGE, ...)
EXIT_DATA = ExitCode.DATA
EXIT_USAGE = ExitCode.USAGE
EXIT_GATE = ExitCode.GATE
EXIT_REJECTED = ExitCode.REJECTED
