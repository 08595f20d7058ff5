"""One error root; each family knows its exit code (DESIGN §2).

Every error carries a message that names what is at fault and, where there is one,
a hint that says how to fix it. The CLI prints ``Error: message (hint)`` and exits with
``exit_code``; library callers (package-manager hooks) catch :class:`WotrError`.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NOT_VERIFIED = 1
EXIT_BAD_INPUT = 2
EXIT_ENVIRONMENT = 3


class WotrError(Exception):
    """Root of every error wotr raises on purpose."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class BadInput(WotrError):
    """The user gave something wotr cannot use: a revision, a file, an option (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class PolicyError(BadInput):
    """The policy file is invalid; the policy fails closed (exit 2)."""


class SignError(BadInput):
    """A claim could not be signed or its signature did not check out (exit 2)."""


class SyncError(BadInput):
    """Claims could not be fetched from or pushed to a remote (exit 2)."""


class EnvironmentProblem(WotrError):
    """gpg or git is missing or broken (exit 3)."""

    exit_code = EXIT_ENVIRONMENT
