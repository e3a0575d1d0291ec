"""RFC 3339 timestamps as Kubernetes' ``metav1.Time`` reads and writes them. Pure."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ._errors import ConversionError

# Go's time.Parse(time.RFC3339, ...): upper-case T and Z, optional fraction, numeric offset.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?(Z|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def rfc3339_utc_seconds(text: str, what: str) -> str:
    """Re-format like ``metav1.Time`` JSON: UTC, second precision, ``Z`` suffix."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise ConversionError(f"{what}: {text[:64]!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    try:
        stamp = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise ConversionError(f"{what}: {exc}") from None
    if m.group(7) != "Z":
        offset_h, offset_m = int(m.group(9)), int(m.group(10))
        if offset_h > 23 or offset_m > 59:
            raise ConversionError(f"{what}: time zone offset out of range")
        offset = timedelta(hours=offset_h, minutes=offset_m)
        try:
            stamp = stamp - offset if m.group(8) == "+" else stamp + offset
        except OverflowError:
            raise ConversionError(f"{what}: timestamp out of range") from None
    if not 1 <= stamp.year <= 9999:
        raise ConversionError(f"{what}: timestamp out of range")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
