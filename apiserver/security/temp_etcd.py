"""The short-lived, localhost-only etcd that ``etcdinit`` configures, and the data-dir wipe before it.

``TemporaryEtcd`` is an async context manager (on ``apiserver.etcd_process``): entering spawns etcd
(``--initial-cluster-state=new`` on ``http://localhost:<port>``), leaving always stops it --
SIGTERM, then SIGKILL after a grace period -- whether the body succeeded, failed, timed out or was
cancelled. etcd's output goes to a private temp file whose tail is put into every error, so a
failed start says why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from apiserver._lifecycle import StartStop
from apiserver._logging import get_logger
from apiserver.etcd_process import STOP_GRACE, EtcdProcess

log = get_logger(__name__)

_LOG_TAIL = 3000


class EtcdInitError(RuntimeError):
    """etcdinit could not complete; the message says what to fix."""


def resolve_etcd_binary(binary: str) -> str:
    """An executable path for ``binary`` (a path, or a name looked up on PATH)."""
    if os.sep in binary:
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return binary
        raise EtcdInitError(f"etcd binary {binary!r} does not exist or is not executable")
    found = shutil.which(binary)
    if found is None:
        raise EtcdInitError(f"etcd binary {binary!r} not found on PATH (set --etcd-binary to its path)")
    return found


def wipe_data_dir(data_dir: str | Path) -> int:
    """Delete everything *inside* ``data_dir``, keeping the directory itself (it is usually a
    mounted volume, which cannot be removed). Returns how many entries were removed."""
    base = Path(data_dir)
    if not base.exists():
        raise EtcdInitError(f"etcd data directory {str(base)!r} does not exist")
    if not base.is_dir():
        raise EtcdInitError(f"etcd data directory {str(base)!r} is not a directory")
    if not os.access(base, os.R_OK | os.W_OK | os.X_OK):
        raise EtcdInitError(f"etcd data directory {str(base)!r} is not readable and writable by this user")
    removed = 0
    try:
        for entry in base.iterdir():
            log.debug("Removing file/directory in data dir", etcdDataDir=str(base), path=entry.name)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed += 1
    except OSError as exc:
        raise EtcdInitError(f"cannot empty etcd data directory {str(base)!r}: {exc}") from exc
    return removed


@dataclass(frozen=True, slots=True)
class EtcdLaunch:
    """How to start the temporary etcd. Ports default to etcd's (upstream passes no peer URL)."""

    binary: str
    data_dir: str
    name: str
    initial_cluster_token: str
    client_port: int = 2379
    peer_port: int = 2380

    @property
    def client_url(self) -> str:
        # "localhost" rather than an address so it works on IPv4-only and IPv6-only pods alike.
        return f"http://localhost:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://localhost:{self.peer_port}"

    def command(self) -> list[str]:
        return [
            self.binary,
            f"--data-dir={self.data_dir}",
            f"--name={self.name}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.name}={self.peer_url}",
            f"--initial-cluster-token={self.initial_cluster_token}",
            "--initial-cluster-state=new",
        ]


class TemporaryEtcd(StartStop):
    """``async with TemporaryEtcd(launch) as etcd:`` -- see the module docstring."""

    def __init__(self, launch: EtcdLaunch, *, stop_grace: float = STOP_GRACE) -> None:
        self.launch = launch
        self.stop_grace = stop_grace
        self._process = EtcdProcess(launch.command())
        self._output: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exited(self) -> bool:
        return self._process.returncode is not None

    def output_tail(self) -> str:
        """The last lines etcd printed (for error messages)."""
        if self._output is None:
            return ""
        # pread: etcd shares this file's offset; moving it would make etcd overwrite its own log.
        fd = self._output.fileno()
        size = os.fstat(fd).st_size
        return os.pread(fd, _LOG_TAIL, max(0, size - _LOG_TAIL)).decode(errors="replace").strip()

    def check_running(self) -> None:
        """Raise ``EtcdInitError`` with etcd's last output if the process has exited."""
        code = self._process.returncode
        if code is not None:
            raise EtcdInitError(f"etcd exited with code {code} during etcdinit; its last output:\n"
                                f"{self.output_tail()}")

    async def start(self) -> None:
        # Owned by this object and closed in stop(): it must outlive this method. Kept in the data
        # directory, the init container's only writable path (the pod's root file system is
        # read-only); the file is anonymous there, so etcd never sees it.
        self._output = tempfile.TemporaryFile(prefix="etcdinit-", dir=self.launch.data_dir)  # noqa: SIM115
        log.debug("Executing etcd", etcdBinary=self.launch.binary, etcdFlags=" ".join(self._process.command[1:]))
        try:
            self._process.start(self._output)
        except OSError as exc:
            self._close_output()
            raise EtcdInitError(f"cannot start etcd {self.launch.binary!r}: {exc}") from exc
        log.info("Local etcd server process started", pid=self._process.pid,
                 etcdListenClientUrl=self.launch.client_url)

    async def stop(self) -> None:
        """SIGTERM, wait up to ``stop_grace``, then SIGKILL. Safe to call twice."""
        try:
            if self._process.running:
                log.info("Sending SIGTERM signal to etcd process", pid=self._process.pid)
                await self._process.stop(self.stop_grace)
                log.info("etcd process exited", pid=self._process.pid, exitCode=self._process.returncode)
        finally:
            self._close_output()

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None
