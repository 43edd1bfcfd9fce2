"""One error type for gemb2: every error it raises on purpose is a `Gemb2Error` whose class says its exit code.

    0    done
    1    FatalError: the model or the store could not be opened or written (a broken file, disk full), the Hub failed
    2    UsageError: a bad flag or value, a missing path, an unknown model, a table made by another model
    3    InputError / a run with failed inputs: some inputs could not be read; the others were done
    4    BusyError: another run holds the table's lock (and --wait ran out); nothing was done
    130  Interrupted by SIGINT, 143 by SIGTERM (128 + the signal number, as a shell reports it)
    141  stdout closed by its reader (128 + SIGPIPE; see gemb2/cli/main.py)

The command line catches these in one place (gemb2/cli/main.py) and prints `gemb2: error: <message>` on one
line, then exits with `exit_code`; `GEMB2_DEBUG=1` lets them through with their traceback. Anything else that
escapes is a bug and is shown with its traceback. Classes that callers used to catch as ValueError or
FileNotFoundError still are (they derive from both).

`Interrupted` is the one exception outside the hierarchy: it is a KeyboardInterrupt, so that library code that
catches Exception (there is a lot of it in torch, onnx and the decoders) cannot swallow a stop signal.
"""

from __future__ import annotations

import signal

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3
EXIT_BUSY = 4
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: the status the shell shows for `seq`, `cat`, `yes` when `head` stops reading


class Gemb2Error(Exception):
    """An error gemb2 reports in one line; `exit_code` is the process's exit status when it ends a command."""

    exit_code: int = EXIT_FATAL


class FatalError(Gemb2Error):
    """Nothing more can be done: the model or the store could not be opened or written (e.g. the disk is full)."""

    exit_code = EXIT_FATAL


class UsageError(Gemb2Error):
    """What was asked cannot be done as asked: a bad flag or value, a missing path, an unknown model, a table
    made by another model. Nothing was changed."""

    exit_code = EXIT_USAGE


class InputError(Gemb2Error):
    """One input (a file, a line) could not be read or decoded. A run records it with its path and goes on;
    a run with such failures exits 3."""

    exit_code = EXIT_PARTIAL


class BusyError(Gemb2Error):
    """Another run holds the lock (and the wait for it ran out); nothing was done."""

    exit_code = EXIT_BUSY


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM (`signum`) ended the work; `exit_code` is 128 + signum (130, 143)."""

    def __init__(self, signum: int = signal.SIGINT, message: str = "") -> None:
        super().__init__(message or interrupted_by(signum))
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def interrupted_by(signum: int) -> str:
    """'interrupted' for SIGINT (Ctrl-C), 'terminated' for SIGTERM (kill, systemd, timeout)."""
    return "terminated" if signum == signal.SIGTERM else "interrupted"
