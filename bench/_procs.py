"""Child processes of the benchmark: spawn with the repo on ``PYTHONPATH``, talk over stdin/stdout
lines, read their memory from ``/proc``, and always stop them (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parent.parent
_STOP_GRACE = 15.0


def memory_mb(pid: int) -> tuple[float, float]:
    """``(peak, current)`` resident set size of ``pid`` in MB (VmHWM, VmRSS)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(rest.split()[0]) / 1024.0  # kB
    return fields["VmHWM"], fields["VmRSS"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by named groups of processes between ``__init__`` and ``read()``; a
    process started later (the one under test) is added with ``add`` and counts from zero."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self._start = {pid: cpu_seconds(pid) for pids in self._groups.values() for pid in pids}

    def add(self, name: str, pid: int) -> None:
        self._groups.setdefault(name, []).append(pid)
        self._start.setdefault(pid, 0.0)

    def read(self) -> dict[str, float]:
        return {name: round(sum(cpu_seconds(pid) - self._start[pid] for pid in pids), 2)
                for name, pids in self._groups.items()}


class Child:
    """One child process: ``python -m <module> <args>``; stderr goes to ``log_path``."""

    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.spawned_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self) -> Child:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        with self._open_log() as log:
            self.spawned_at = asyncio.get_running_loop().time()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *self.args, cwd=REPO, env=env, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=log, limit=64 * 1024 * 1024)
        return self

    def _open_log(self) -> BinaryIO:
        # A local file on tmpfs or disk: opening it does not block the loop for long.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.log_path, "wb")

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    async def read_message(self, timeout: float) -> dict[str, Any]:
        """The next JSON line the child printed; fails with its log if it died or stayed silent."""
        assert self.proc is not None and self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise RuntimeError(f"{self.name}: no answer within {timeout:g}s\n{self.log_tail()}") from None
        if not line:
            raise RuntimeError(f"{self.name} exited ({await self.proc.wait()})\n{self.log_tail()}")
        message: dict[str, Any] = json.loads(line)
        return message

    async def send(self, command: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.returncode is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode})\n{self.log_tail()}")

    async def stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), _STOP_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return proc.returncode
