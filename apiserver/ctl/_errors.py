"""The one error type of ``clustermeshctl``: a message and a hint, printed as one line each."""

from __future__ import annotations


class CtlError(Exception):
    """A failure the operator can act on: ``message`` says what, ``hint`` what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message
