"""One error hierarchy; `harness.main` maps it to exit codes and messages."""
from __future__ import annotations


class HarnessError(Exception):
    """An expected failure with a message written for the user (exit code 1 unless overridden)."""

    exit_code = 1


class ConfigError(HarnessError):
    """harness.yaml is missing, malformed, or holds an unknown key or a bad value."""


class LedgerError(HarnessError):
    """The ledger cannot be parsed, or an operation on it is invalid (unknown item, bad field value)."""


class GitError(HarnessError):
    """A git operation failed; the message says which and what to do."""


class LockError(HarnessError):
    """Another harness holds the repository lock."""


class SelectorError(HarnessError):
    """A pytest selector is malformed or could not be run."""


class EvidenceError(HarnessError):
    """Evidence could not be written, or does not match its checksums."""


class NothingActionable(HarnessError):
    """No ledger item can run now (exit code 3)."""

    exit_code = 3
