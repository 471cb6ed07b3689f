"""One error hierarchy, and the exit codes: each outcome of a command has its own, and they stay stable.

`harness.main` maps an error to its class's `exit_code` and prints its message; `harness --help` and the
README list the codes below.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a `harness` command's exit status means (stable: scripts and loops depend on it)."""

    OK = 0                  # done: GREEN, verified, nothing wrong found
    REFUSED = 1             # the harness ran and the answer is no: an attempt FAILED (recorded), a check
    #                         found problems (`ledger lint`, `ledger verify`, `selectors run`), the loop
    #                         stopped on failures or on its time budget
    USAGE = 2               # the command line is wrong (argparse)
    NOTHING_ACTIONABLE = 3  # no ledger item can run now
    ERROR = 4               # an error stopped the command before anything was proven or recorded (bad
    #                         harness.yaml, ledger, selector, git state, missing agent): nothing changed
    BUSY = 5                # another harness holds this repository's lock
    INTERNAL = 70           # a bug in the harness: a crash report was written
    INTERRUPTED = 130       # Ctrl-C or SIGTERM: the running attempt was recorded as aborted


EXIT_CODE_HELP = """\
exit codes (stable):
  0    done: GREEN, verified, nothing wrong found
  1    refused: an attempt FAILED (recorded), a check found problems, the loop stopped on failures or budget
  2    bad usage (the command line)
  3    nothing actionable: no ledger item can run now
  4    error before anything was proven or recorded (harness.yaml, ledger, selector, git, agent): nothing changed
  5    busy: another harness holds this repository's lock
  70   internal error (a bug): a crash report was written
  130  interrupted (Ctrl-C, SIGTERM): the running attempt was recorded as aborted
"""


class HarnessError(Exception):
    """An expected failure with a message written for the user: nothing was proven or recorded."""

    exit_code = ExitCode.ERROR


class ConfigError(HarnessError):
    """harness.yaml is missing, malformed, or holds an unknown key or a bad value."""


class LedgerError(HarnessError):
    """The ledger cannot be parsed, or an operation on it is invalid (unknown item, bad field value)."""


class GitError(HarnessError):
    """A git operation failed; the message says which and what to do."""


class LockError(HarnessError):
    """The repository's lock or journal cannot be used (unreadable, corrupt)."""


class RepositoryBusy(LockError):
    """Another harness holds the repository lock."""

    exit_code = ExitCode.BUSY


class SelectorError(HarnessError):
    """A pytest selector is malformed or could not be run."""


class EvidenceError(HarnessError):
    """Evidence could not be written, or does not match its checksums."""


class NothingActionable(HarnessError):
    """No ledger item can run now."""

    exit_code = ExitCode.NOTHING_ACTIONABLE


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived while `harness loop` ran: the current step is abandoned, and the attempt
    is recovered as ABORTED with its work saved, as after Ctrl-C. A BaseException, as KeyboardInterrupt
    is, so that code taking back an attempt after an ordinary error lets it pass (an interruption is a
    crash, not an error)."""
