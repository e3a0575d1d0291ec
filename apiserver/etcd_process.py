"""One etcd server process, owned: started in a session of its own, stopped SIGTERM then SIGKILL.

The one launcher of the project: ``etcdinit``'s temporary etcd (``security.temp_etcd``) and the
local tooling's test etcd (``localmesh.testing.etcd.EtcdServer``) both run etcd through it. It
knows nothing of etcd's flags (the caller builds the command) and never touches a process it did
not start. Signals go to the process group, so nothing etcd spawned outlives it; a stop that is
itself cancelled kills etcd before it lets the cancellation through.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO

from apiserver._logging import get_logger

log = get_logger(__name__)

STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without ``ETCD_*`` / ``ETCDCTL_*``: etcd and etcdctl read those
    as flags, and a stray one would silently change the set-up."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETCD_", "ETCDCTL_"))}
    env.update(extra or {})
    return env


def with_parent_death_signal(command: Sequence[str]) -> list[str]:
    """``command`` under ``setpriv --pdeathsig KILL`` when available: if the spawning *thread*
    dies without cleanup, the kernel kills etcd with it (spawn from a thread that lives as long)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv is not None else list(command)


class EtcdProcess:
    """``start()`` spawns ``command`` with its output to ``output``; ``stop()`` / ``stop_sync()``
    end it (SIGTERM, then SIGKILL after ``grace``); ``kill()`` is a crash. Restartable."""

    def __init__(self, command: Sequence[str], *, env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self._env = dict(env) if env is not None else clean_env()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started)."""
        return self._proc.poll() if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, output: IO[bytes] | int) -> None:
        """Spawn (raises ``OSError`` when the binary cannot be run). ``output`` gets stdout and stderr."""
        if self.running:
            raise RuntimeError(f"etcd already running (pid {self.pid})")
        self._proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                      env=self._env, start_new_session=True)

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL and reap (a crash: no clean shutdown)."""
        if self.running:
            self._signal(signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait()

    def stop_sync(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL (blocking)."""
        if not self.running:
            return
        assert self._proc is not None
        self._signal(signal.SIGTERM)
        try:
            self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("etcd did not exit after SIGTERM; killing it", pid=self._proc.pid)
            self.kill()

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """``stop_sync`` without blocking the event loop; cancelled meanwhile, etcd is killed."""
        if not self.running:
            return
        assert self._proc is not None
        try:
            self._signal(signal.SIGTERM)
            try:
                # A worker thread reaps; cancelled meanwhile, the kill below ends its wait too.
                await asyncio.to_thread(self._proc.wait, grace)
            except subprocess.TimeoutExpired:
                log.warning("etcd did not exit after SIGTERM; killing it", pid=self._proc.pid)
                self.kill()
        except BaseException:
            self.kill()
            raise
