"""Kubelet's atomic writer for Secret, ConfigMap, projected and downward API volumes.

Layout (``pkg/volume/util/atomic_writer.go``)::

    <dir>/..2026_12_03_13_31_20.123456789/<path>   the payload, one timestamped directory per version
    <dir>/..data -> ..2026_12_03_13_31_20.123456789
    <dir>/<first path component> -> ..data/<first path component>

An update writes a new timestamped directory, points a ``..data_tmp`` symlink at it and renames that
over ``..data`` (one atomic rename: a reader sees the old or the new payload, never a mix), then
adds and removes the top-level symlinks and deletes the old directory. Watchers of ``..data``
(KVStoreMesh's config directory, certificate reloaders) see one event per update.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DATA = "..data"


@dataclass(frozen=True, slots=True)
class FileProjection:
    data: bytes
    mode: int = 0o644


Payload = Mapping[str, FileProjection]


def _check_path(path: str) -> None:
    parts = path.split("/")
    if not path or path.startswith("/") or ".." in parts or parts[0].startswith(".."):
        raise ValueError(f"invalid volume file path {path!r}: must be relative, without '..'")


def _read_version(target: Path) -> str | None:
    try:
        return os.readlink(target / DATA)
    except OSError:
        return None


def _same(current: Path, payload: Payload) -> bool:
    existing = {str(p.relative_to(current)) for p in current.rglob("*") if p.is_file()}
    if existing != set(payload):
        return False
    for rel, proj in payload.items():
        file = current / rel
        if file.read_bytes() != proj.data or (file.stat().st_mode & 0o7777) != proj.mode:
            return False
    return True


def write_atomic(target: Path, payload: Payload, *, now: dt.datetime | None = None) -> bool:
    """Make ``target`` hold ``payload``; returns False when it already did (nothing written)."""
    for rel in payload:
        _check_path(rel)
    target.mkdir(parents=True, exist_ok=True)
    old_version = _read_version(target)
    if old_version is not None and _same(target / old_version, payload):
        return False
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("..%Y_%m_%d_%H_%M_%S.%f")
    version = target / stamp
    suffix = 0
    while version.exists():
        suffix += 1
        version = target / f"{stamp}{suffix}"
    version.mkdir()
    for rel, proj in payload.items():
        file = version / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(proj.data)
        os.chmod(file, proj.mode)
    version.chmod(0o755)
    tmp = target / "..data_tmp"
    tmp.unlink(missing_ok=True)
    os.symlink(version.name, tmp)
    os.rename(tmp, target / DATA)
    top = {rel.split("/", 1)[0] for rel in payload}
    for name in top:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"{DATA}/{name}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in top:
            entry.unlink()
    if old_version is not None and old_version != version.name:
        shutil.rmtree(target / old_version, ignore_errors=True)
    return True
