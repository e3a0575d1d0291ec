"""Go-compatible flag values (pflag / strconv / time), so upstream's container arguments work unchanged.

A bottom module: the configuration of every layer (Kubernetes client, etcd client, daemons) reads its
Go-style values through it; it imports nothing of the project.

Upstream binaries use cobra/pflag: ``--flag=value``, booleans as ``--flag`` or ``--flag=false``,
durations as ``15m``/``1h30m``/``0s``, maps as repeated ``--kvstore-opt k=v``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

_TRUE = {"1", "t", "T", "true", "TRUE", "True"}
_FALSE = {"0", "f", "F", "false", "FALSE", "False"}
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)


def go_quote(text: str) -> str:
    """Go's ``%q`` of a plain string (enough for error messages)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_atoi(text: str) -> int:
    """Go ``strconv.Atoi``: an optional sign, then decimal digits only, within int64.

    Raises ``ValueError`` with Go's own text (``strconv.Atoi: parsing "2.5": invalid syntax``)."""
    if not _ATOI.fullmatch(text):
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: invalid syntax")
    value = int(text)
    if value not in _INT64:
        raise ValueError(f"strconv.Atoi: parsing {go_quote(text)}: value out of range")
    return value


def go_bool(text: str) -> bool:
    """Go ``strconv.ParseBool``."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def go_duration(text: str) -> float:
    """Go ``time.ParseDuration`` -> seconds (``"0"`` alone is allowed, as in Go)."""
    raw = text.strip()
    if raw in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if raw.startswith("-") else 1.0
    body = raw.lstrip("+-")
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (expected e.g. 30s, 15m, 1h30m)")
    return sign * total


def key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"invalid key=value option {text!r}")
    return key, value


class KeyValueAction(argparse.Action):
    """Repeatable ``--opt k=v`` (or ``--opt k1=v1,k2=v2``) collected into one dict."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        current: dict[str, str] = dict(getattr(namespace, self.dest, None) or {})
        assert isinstance(values, str)
        for item in values.split(","):
            if item:
                k, v = key_value(item)
                current[k] = v
        setattr(namespace, self.dest, current)


class CommaListAction(argparse.Action):
    """Repeatable ``--flag a,b --flag c`` collected into one list (pflag StringSlice)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        current: list[str] = list(getattr(namespace, self.dest, None) or [])
        assert isinstance(values, str)
        current.extend(v for v in values.split(",") if v)
        setattr(namespace, self.dest, current)


def add_bool(parser: argparse.ArgumentParser, flag: str, default: bool, help: str) -> None:
    """A pflag-style boolean: ``--flag`` means true, ``--flag=false`` works too."""
    parser.add_argument(flag, type=go_bool, nargs="?", const=True, default=default, metavar="BOOL",
                        help=f"{help} (default {str(default).lower()})")
