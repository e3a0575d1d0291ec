"""What one kubelet run created on the host, on disk, so that the next start can undo it after a crash.

``<root>/<run>/state.json`` names the owning process (pid and start time) and lists what is alive:
processes (pid + start time, so a reused pid is never killed), host network links (removing the host
end of a veth removes the pair), routes and a reference on IPv4 forwarding. ``sweep`` undoes every run
whose owner is gone. Forwarding is shared host state: it is turned on with the first reference of any
run and set back to its previous value with the last.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from apiserver._logging import get_logger
from localmesh.kubelet._sys import pid_alive, process_start_time, run

log = get_logger(__name__)

DEFAULT_ROOT = Path("/run/localmesh-kubelet")
_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@contextlib.contextmanager
def host_lock(root: Path) -> Iterator[None]:
    """One lock for every kubelet on the host: choosing subnets and switching forwarding."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class RunState:
    """The record of one run; every change is written at once (rename over the old file)."""

    def __init__(self, root: Path, run_id: str) -> None:
        self.root = root
        self.run_id = run_id
        self.dir = root / run_id
        self._data: dict[str, Any] = {"owner": {"pid": os.getpid(), "start": process_start_time(os.getpid())},
                                      "processes": [], "links": [], "routes": [], "forwarding": False}

    def create(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=False)
        self._save()

    def _save(self) -> None:
        tmp = self.dir / ".state.json.partial"
        tmp.write_bytes(orjson.dumps(self._data))
        os.replace(tmp, self.dir / "state.json")

    def add(self, kind: str, entry: Any) -> None:
        self._data[kind].append(entry)
        self._save()

    def remove(self, kind: str, entry: Any) -> None:
        with contextlib.suppress(ValueError):
            self._data[kind].remove(entry)
        self._save()

    def add_process(self, pid: int) -> dict[str, Any]:
        entry = {"pid": pid, "start": process_start_time(pid)}
        self.add("processes", entry)
        return entry

    def prune_processes(self) -> None:
        """Drop the records of processes that have ended."""
        alive = [p for p in self._data["processes"] if pid_alive(p["pid"], p.get("start"))]
        if len(alive) != len(self._data["processes"]):
            self._data["processes"] = alive
            self._save()

    def forwarding(self, on: bool) -> None:
        with host_lock(self.root):
            _forward_ref(self.root, self.run_id, on)
            self._data["forwarding"] = on
            self._save()


def _forward_ref(root: Path, run_id: str, on: bool) -> None:
    refs = root / "forwarding"
    refs.mkdir(exist_ok=True)
    saved = root / "forwarding.previous"
    if on:
        if not any(refs.iterdir()):
            saved.write_text(_FORWARD.read_text())
            _FORWARD.write_text("1\n")
        (refs / run_id).touch()
        return
    (refs / run_id).unlink(missing_ok=True)
    if not any(refs.iterdir()) and saved.exists():
        _FORWARD.write_text(saved.read_text())
        saved.unlink()


async def undo(root: Path, state_dir: Path) -> None:
    """Undo one run's record: kill its processes, delete its routes and links, drop its forwarding
    reference, remove its directory."""
    try:
        data = orjson.loads((state_dir / "state.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        data = {}
    for proc in data.get("processes", []):
        if pid_alive(proc["pid"], proc.get("start")):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc["pid"], signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc["pid"], signal.SIGKILL)
    for route in data.get("routes", []):
        await run(["ip", "route", "del", route], check=False)
    for link in data.get("links", []):
        await run(["ip", "link", "del", link], check=False)
    if data.get("forwarding"):
        with host_lock(root):
            _forward_ref(root, state_dir.name, False)
    shutil.rmtree(state_dir, ignore_errors=True)


def _stale_runs(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    stale: list[Path] = []
    for state_dir in sorted(root.iterdir()):
        if not state_dir.is_dir() or state_dir.name == "forwarding":
            continue
        try:
            owner = orjson.loads((state_dir / "state.json").read_bytes())["owner"]
        except (OSError, orjson.JSONDecodeError, KeyError):
            owner = {"pid": 0}
        if not (owner["pid"] and pid_alive(owner["pid"], owner.get("start"))):
            stale.append(state_dir)
    return stale


async def sweep(root: Path = DEFAULT_ROOT) -> list[str]:
    """Undo every run under ``root`` whose owning process is gone; returns their ids."""
    swept: list[str] = []
    for state_dir in _stale_runs(root):
        log.info("Sweeping what a stopped kubelet left behind", run=state_dir.name)
        await undo(root, state_dir)
        swept.append(state_dir.name)
    return swept
