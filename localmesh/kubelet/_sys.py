"""Host primitives of the local kubelet: root check, namespace entry, commands (``ip``, ...)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable, Sequence

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_setns = _libc.setns
_prctl = _libc.prctl


class NotRootError(PermissionError):
    """The local kubelet needs root: network and mount namespaces, veths, bridges, routes."""


class CommandError(RuntimeError):
    pass


def require_root(what: str = "the local kubelet") -> None:
    if os.geteuid() != 0:
        raise NotRootError(f"{what} needs root (network and mount namespaces, veth pairs, bridges and "
                           f"routes); run it as root (uid 0), not uid {os.geteuid()}")


def setns(fd: int, nstype: int) -> None:
    if _setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def die_with_parent() -> None:
    """In a child before exec: SIGKILL when the parent (the kubelet) dies, so a crashed runtime leaves
    no process behind even before the next start sweeps."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def enter_namespaces(pid: int, *, mount: bool = True) -> Callable[[], None]:
    """A ``preexec_fn`` that moves the child into ``pid``'s network, UTS and mount namespaces (its
    root and cwd become the namespace's root), starts a new process group and dies with the parent.
    The namespace files are opened now, in the parent; the child only calls setns."""
    kinds = [("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS)] + ([("mnt", CLONE_NEWNS)] if mount else [])
    fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC), flag) for name, flag in kinds]

    def preexec() -> None:
        for fd, flag in fds:
            setns(fd, flag)
        os.setpgid(0, 0)
        die_with_parent()

    preexec.fds = [fd for fd, _ in fds]  # type: ignore[attr-defined]
    return preexec


def close_preexec(preexec: Callable[[], None]) -> None:
    for fd in getattr(preexec, "fds", []):
        os.close(fd)


async def run(argv: Sequence[str], *, stdin: bytes | None = None, check: bool = True) -> str:
    """Run a host command; a non-zero exit raises ``CommandError`` with its stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin)
    if check and proc.returncode != 0:
        raise CommandError(f"{' '.join(argv)}: exit {proc.returncode}: {err.decode(errors='replace').strip()}")
    return out.decode()


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks): a pid plus this names one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def pid_alive(pid: int, start_time: int | None) -> bool:
    now = process_start_time(pid)
    return now is not None and (start_time is None or now == start_time)
