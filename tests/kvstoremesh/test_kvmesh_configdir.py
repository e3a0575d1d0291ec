"""Config directory tracking, including Kubernetes Secret volumes (``..data`` symlink swaps)."""

from __future__ import annotations

import os
from pathlib import Path

from apiserver.kvstoremesh import ConfigDirWatcher, diff_configs, scan_config_dir
from apiserver.kvstoremesh._configdir import ConfigFile

CONFIG = "endpoints:\n- https://{name}.mesh.cilium.io:2379\ntrusted-ca-file: /ca.crt\n"


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def upsert(self, name: str, path: str) -> None:
        self.log.append(("upsert", name))

    def remove(self, name: str) -> None:
        self.log.append(("remove", name))

    def take(self) -> list[tuple[str, str]]:
        out, self.log = self.log, []
        return out


def secret_volume(root: Path, version: str, files: dict[str, str]) -> None:
    """Lay out (or atomically swap) a Secret volume: ``..<version>/<files>``, ``..data`` -> it,
    and one top-level symlink per key pointing into ``..data``."""
    versioned = root / f"..{version}"
    versioned.mkdir()
    for name, content in files.items():
        (versioned / name).write_text(content)
    tmp_link = root / "..data_tmp"
    tmp_link.symlink_to(versioned.name)
    os.replace(tmp_link, root / "..data")  # the atomic swap kubelet does
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    for name in os.listdir(root):  # keys removed from the Secret lose their link
        link = root / name
        if not name.startswith(".") and link.is_symlink() and not link.exists():
            link.unlink()


def test_scan_filters_and_hashes(tmp_path: Path) -> None:
    (tmp_path / "c2").write_text(CONFIG.format(name="c2"))
    (tmp_path / "c3").write_text("not an etcd config")
    (tmp_path / ".hidden").write_text(CONFIG.format(name="hidden"))
    (tmp_path / "subdir").mkdir()
    (tmp_path / "subdir" / "c4").write_text(CONFIG.format(name="c4"))
    (tmp_path / "common-etcd-client.crt").write_text("-----BEGIN CERTIFICATE-----")
    found = scan_config_dir(str(tmp_path))
    assert list(found) == ["c2"]
    assert found["c2"].path == str(tmp_path / "c2")
    assert scan_config_dir(str(tmp_path / "missing")) == {}


def test_diff() -> None:
    a, a2, b = ConfigFile("a", "/a", "1"), ConfigFile("a", "/a", "2"), ConfigFile("b", "/b", "1")
    assert diff_configs({}, {"a": a}) == ([a], [])
    assert diff_configs({"a": a}, {"a": a}) == ([], [])
    assert diff_configs({"a": a, "b": b}, {"a": a2}) == ([a2], ["b"])


def test_plain_files_add_change_remove(tmp_path: Path) -> None:
    events = Events()
    watcher = ConfigDirWatcher(str(tmp_path), events.upsert, events.remove)
    watcher.poll()
    assert events.take() == []
    (tmp_path / "c2").write_text(CONFIG.format(name="c2"))
    watcher.poll()
    assert events.take() == [("upsert", "c2")]
    watcher.poll()
    assert events.take() == []  # unchanged content: no event
    (tmp_path / "c2").write_text(CONFIG.format(name="c2") + "cert-file: /x\n")
    watcher.poll()
    assert events.take() == [("upsert", "c2")]
    (tmp_path / "c2").write_text("endpoint removed")  # no longer a config: disconnect
    watcher.poll()
    assert events.take() == [("remove", "c2")]
    (tmp_path / "c2").write_text(CONFIG.format(name="c2"))
    watcher.poll()
    (tmp_path / "c2").unlink()
    watcher.poll()
    assert events.take() == [("upsert", "c2"), ("remove", "c2")]


def test_secret_volume_symlink_swaps(tmp_path: Path) -> None:
    events = Events()
    watcher = ConfigDirWatcher(str(tmp_path), events.upsert, events.remove)
    secret_volume(tmp_path, "v1", {"c2": CONFIG.format(name="c2"), "c3": CONFIG.format(name="c3"),
                                   "common-etcd-client.key": "KEY"})
    watcher.poll()
    assert events.take() == [("upsert", "c2"), ("upsert", "c3")]
    # New Secret version: c2 changed, c3 unchanged, c4 added.
    secret_volume(tmp_path, "v2", {"c2": CONFIG.format(name="c2-new"), "c3": CONFIG.format(name="c3"),
                                   "c4": CONFIG.format(name="c4"), "common-etcd-client.key": "KEY"})
    watcher.poll()
    assert events.take() == [("upsert", "c2"), ("upsert", "c4")]
    # Next version drops c3.
    secret_volume(tmp_path, "v3", {"c2": CONFIG.format(name="c2-new"), "c4": CONFIG.format(name="c4")})
    watcher.poll()
    assert events.take() == [("remove", "c3")]


async def test_start_scans_synchronously_and_stop_is_clean(tmp_path: Path) -> None:
    (tmp_path / "c2").write_text(CONFIG.format(name="c2"))
    events = Events()
    watcher = ConfigDirWatcher(str(tmp_path), events.upsert, events.remove, interval=0.01)
    await watcher.start()
    assert events.take() == [("upsert", "c2")]  # known as soon as start() returns
    await watcher.stop()
    await watcher.stop()  # idempotent
