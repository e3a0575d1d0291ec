"""Watch the ``--clustermesh-config`` directory: one etcd client YAML per remote cluster.

The file name is the cluster name; a file is a cluster config iff its content contains
``endpoints:``. Polling (stat + SHA-256 of the content through ``apiserver.filewatch``, following
symlinks) rather than inotify:
Kubernetes Secret volumes swap a ``..data`` symlink atomically, which polling sees as one content
change, and no extra dependency is needed. Dot-files and directories are ignored.

``scan_config_dir`` and ``diff_configs`` are pure-ish helpers (one directory read, no state);
``ConfigDirWatcher`` owns the polling task and reports changes through two callbacks. It never
validates cluster names: that is the mesh's decision.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from apiserver.filewatch import read_snapshot

log = get_logger(__name__)

CONFIG_MARKER = b"endpoints:"


@dataclass(frozen=True, slots=True)
class ConfigFile:
    name: str
    path: str
    digest: str


def read_config_file(path: str, name: str) -> ConfigFile | None:
    """The config at ``path`` (symlinks followed), or None if it is not a readable cluster config."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        snapshot = read_snapshot(path)
    except OSError:
        return None
    if CONFIG_MARKER not in snapshot.data:
        return None
    return ConfigFile(name=name, path=path, digest=snapshot.digest)


def scan_config_dir(directory: str) -> dict[str, ConfigFile]:
    """Every cluster config in ``directory``, by file name (= cluster name)."""
    found: dict[str, ConfigFile] = {}
    try:
        entries = sorted(os.listdir(directory))
    except OSError as exc:
        # Not fatal: the directory may be mounted later; every poll tries again.
        log.debug("Cannot read the cluster mesh configuration directory", path=directory, error=str(exc))
        return found
    for name in entries:
        if name.startswith("."):
            continue  # "..data", "..2024_01_01..." of Secret volumes, editor leftovers
        config = read_config_file(os.path.join(directory, name), name)
        if config is not None:
            found[name] = config
    return found


def diff_configs(old: dict[str, ConfigFile],
                 new: dict[str, ConfigFile]) -> tuple[list[ConfigFile], list[str]]:
    """(configs added or whose content changed, names removed), both sorted by name."""
    upserted = [cfg for name, cfg in sorted(new.items())
                if name not in old or old[name].digest != cfg.digest]
    removed = sorted(name for name in old if name not in new)
    return upserted, removed


class ConfigDirWatcher:
    """Polls a config directory and reports cluster configs added/changed (``on_upsert``) or gone."""

    def __init__(self, directory: str, on_upsert: Callable[[str, str], None],
                 on_remove: Callable[[str], None], *, interval: float = 1.0) -> None:
        self._directory = directory
        self._on_upsert = on_upsert
        self._on_remove = on_remove
        self._interval = interval
        self._tracked: dict[str, ConfigFile] = {}
        self._task: asyncio.Task[None] | None = None

    def poll(self) -> None:
        """One scan; callbacks run synchronously for every change found."""
        current = scan_config_dir(self._directory)
        upserted, removed = diff_configs(self._tracked, current)
        self._tracked = current
        for name in removed:
            log.info("Removed cluster configuration", cluster=name, path=self._directory)
            self._on_remove(name)
        for cfg in upserted:
            log.info("Added or updated cluster configuration", cluster=cfg.name, path=cfg.path,
                     sha256=cfg.digest[:12])
            self._on_upsert(cfg.name, cfg.path)

    async def start(self) -> None:
        """Scan once (so the initial set of remotes is known on return), then poll in background."""
        if self._task is not None:
            raise RuntimeError("config directory watcher already started")
        self.poll()
        self._task = asyncio.create_task(self._loop(), name=f"configdir:{self._directory}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.poll()
            except Exception:  # a callback bug must not stop config tracking
                log.exception("Failed to process cluster configuration changes", path=self._directory)
