"""The Kubernetes exec channel protocol over WebSocket (``v5.channel.k8s.io``, ``v4.channel.k8s.io``). Pure.

Each binary message starts with its channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (a ``Status``
object once the command ended: ``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and the
exit code in ``details.causes[ExitCode]``), 4 resize; v5 adds 255 = close (the next byte names the
channel the client closes). This is how ``kubectl exec`` and cilium-cli read command output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


@dataclass(slots=True)
class ExecResult:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    exit_code: int | None = None  # None until the error channel reported
    error: str = ""  # a failure that is not a plain non-zero exit (e.g. executable not found)

    def feed(self, message: bytes) -> None:
        """One WebSocket message."""
        if not message:
            return
        channel, payload = message[0], message[1:]
        if channel == STDOUT:
            self.stdout += payload
        elif channel == STDERR:
            self.stderr += payload
        elif channel == ERROR and payload:
            self.exit_code, self.error = parse_status(payload)

    @property
    def finished(self) -> bool:
        return self.exit_code is not None


def parse_status(payload: bytes) -> tuple[int, str]:
    """(exit code, error text) from the error channel's ``Status``."""
    try:
        status = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return 1, payload.decode("utf-8", "replace")
    if not isinstance(status, dict):
        return 1, str(status)
    if status.get("status") == "Success":
        return 0, ""
    message = str(status.get("message") or "")
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message")), ""
            except (TypeError, ValueError):
                break
    return 1, message or "command failed"


def encode_close(channel: int) -> bytes:
    return bytes([CLOSE, channel])
