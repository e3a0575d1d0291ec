"""Structured logging: every record carries key=value fields, rendered as logfmt or JSON lines.

Use ``get_logger(__name__).info("Initial sync progress", resource="nodes", listed=10)``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import sys
from collections.abc import Mapping
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
_FIELDS = "_fields"


class StructuredLogger:
    """A thin wrapper over ``logging.Logger`` that takes fields as keyword arguments."""

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def _log(self, level: int, msg: str, fields: Mapping[str, Any], exc_info: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, msg, extra={_FIELDS: dict(fields)}, exc_info=exc_info, stacklevel=3)

    def debug(self, msg: str, **fields: Any) -> None:
        self._log(logging.DEBUG, msg, fields)

    def info(self, msg: str, **fields: Any) -> None:
        self._log(logging.INFO, msg, fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self._log(logging.WARNING, msg, fields)

    def error(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields)

    def exception(self, msg: str, **fields: Any) -> None:
        self._log(logging.ERROR, msg, fields, exc_info=True)

    def is_debug(self) -> bool:
        return self._logger.isEnabledFor(logging.DEBUG)


def get_logger(name: str) -> StructuredLogger:
    return StructuredLogger(logging.getLogger(name))


def _logfmt_value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\') or not text.isprintable():
        return orjson.dumps(text).decode()
    return text


class LogfmtFormatter(logging.Formatter):
    """``time=... level=info subsys=... msg="..." key=value`` -- the layout Cilium's text logs use."""

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(timespec="milliseconds")
        parts = [
            f"time={ts.replace('+00:00', 'Z')}",
            f"level={record.levelname.lower()}",
            f"subsys={record.name}",
            f"msg={_logfmt_value(record.getMessage())}",
        ]
        fields: Mapping[str, Any] = getattr(record, _FIELDS, {})
        parts.extend(f"{k}={_logfmt_value(v)}" for k, v in fields.items())
        if record.exc_info:
            parts.append(f"error={_logfmt_value(self.formatException(record.exc_info))}")
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, _dt.UTC).isoformat(timespec="milliseconds")
        doc: dict[str, Any] = {
            "time": ts.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "subsys": record.name,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, _FIELDS, {}))
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure_logging(debug: bool = False, fmt: LogFormat = "text") -> None:
    """Send every record of the process to stderr in the chosen format (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # Third-party chatter stays at warning unless it says something that matters.
    for noisy in ("aiohttp.access", "asyncio", "grpc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
