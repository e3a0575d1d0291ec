"""etcd's authentication types (``authpb``): permission kinds, key ranges and grants, as data. Pure.

The etcd client returns and takes these; ``apiserver.security.roles`` builds clustermesh's roles of them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from apiserver import paths

__all__ = ["Grant", "KeyRange", "Permission"]


class Permission(enum.IntEnum):
    """etcd's ``authpb.Permission.Type`` values."""

    READ = 0
    WRITE = 1
    READWRITE = 2

    @property
    def allows_read(self) -> bool:
        return self is not Permission.WRITE

    @property
    def allows_write(self) -> bool:
        return self is not Permission.READ


@dataclass(frozen=True, slots=True, order=True)
class KeyRange:
    """``[start, end)`` in etcd's terms; ``end == ""`` means the single key ``start``."""

    start: str
    end: str = ""

    @classmethod
    def key(cls, key: str) -> KeyRange:
        return cls(key, "")

    @classmethod
    def prefix(cls, prefix: str, *, trailing_slash: bool = True) -> KeyRange:
        """Every key under ``prefix``. A ``/`` is appended unless asked not to, so that
        ``cilium/synced/c1`` does not also cover ``cilium/synced/c10/...``."""
        if trailing_slash and not prefix.endswith("/"):
            prefix += "/"
        return cls(prefix, paths.prefix_range_end(prefix))

    def contains(self, key: str) -> bool:
        if not self.end:
            return key == self.start
        return self.start <= key < self.end


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    permission: Permission
    range: KeyRange
