"""Split a chunked watch stream into JSON lines (pure, no I/O).

Chunks arrive in arbitrary sizes; one watch event is one ``\\n``-terminated line, possibly several
MiB long. Every complete line of a chunk comes back at once, so the reflector can decode and
deliver them as one batch.
"""

from __future__ import annotations

# Far above any Kubernetes object (etcd caps values at 1.5 MiB); bounds memory on a broken peer.
DEFAULT_MAX_LINE = 64 * 1024 * 1024


class LineTooLongError(ValueError):
    pass


class LineSplitter:
    __slots__ = ("_max", "_pending", "_size")

    def __init__(self, max_line: int = DEFAULT_MAX_LINE) -> None:
        self._max = max_line
        # A long line is collected as a list of pieces: joining once avoids quadratic copying.
        self._pending: list[bytes] = []
        self._size = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """The complete, non-empty lines finished by ``chunk`` (without their ``\\n``)."""
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                self._pending.append(chunk)
                self._size += len(chunk)
                if self._size > self._max:
                    raise LineTooLongError(f"watch line longer than {self._max} bytes")
            return []
        if self._pending:
            self._pending.append(chunk[:end])
            data = b"".join(self._pending)
            self._pending.clear()
        else:
            data = chunk[:end]
        rest = chunk[end + 1:]
        self._size = len(rest)
        if rest:
            self._pending.append(rest)
        if b"\n" not in data:
            return [data] if data.strip() else []
        return [line for line in data.split(b"\n") if line.strip()]

    def tail(self) -> bytes:
        """What is left after the last newline (a final line the server did not terminate)."""
        data = b"".join(self._pending)
        self._pending.clear()
        self._size = 0
        return data if data.strip() else b""
