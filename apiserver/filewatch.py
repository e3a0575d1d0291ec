"""Poll one file's *content* (SHA-256) rather than its inode or mtime.

Shared by the per-cluster users file (``security.users``) and KVStoreMesh's config directory
(``kvstoremesh._configdir``): one way to read a mounted file and tell whether it changed.

Kubernetes updates ConfigMap/Secret volumes by swapping a ``..data`` symlink: the watched path
keeps its name while the file behind it is replaced, and mtimes may not change. Re-opening the
path and hashing what it reads sees every such swap, and a rewrite with identical bytes is
(correctly) no change at all. Pure bookkeeping plus one ``read_bytes``; no background task.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileSnapshot:
    data: bytes
    digest: str


def read_snapshot(path: str | Path) -> FileSnapshot:
    """The file's bytes and their digest; raises ``OSError`` (e.g. ``FileNotFoundError``)."""
    data = Path(path).read_bytes()
    return FileSnapshot(data, hashlib.sha256(data).hexdigest())


class ContentWatcher:
    """``poll()`` returns the new snapshot when the content differs from the last *accepted*
    one, else None. ``accept(snapshot)`` is called after the change was acted upon, so a failed
    reconcile is retried on the next poll."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._accepted: str | None = None

    def poll(self) -> FileSnapshot | None:
        snap = read_snapshot(self.path)
        return None if snap.digest == self._accepted else snap

    def accept(self, snapshot: FileSnapshot) -> None:
        self._accepted = snapshot.digest

    def forget(self) -> None:
        """Make the next ``poll`` report the current content even if unchanged (forced resync)."""
        self._accepted = None
