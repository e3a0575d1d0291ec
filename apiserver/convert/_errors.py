"""The one error type of the converters: the input object is malformed and cannot be exported.

Callers skip the object, count it and carry on; a converter never lets a ``KeyError``,
``TypeError`` or ``AttributeError`` escape on bad input.
"""

from __future__ import annotations


class ConversionError(ValueError):
    """A Kubernetes object (or a stored value) does not have the shape the wire format needs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
