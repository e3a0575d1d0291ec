"""A pod's sandbox: the process holding its network and UTS namespaces, its veth and address, the
API server's address inside it, and the start of its containers (each in its own mount namespace).

Every process started here is recorded in the run state (swept after a crash) and dies with the
kubelet (``PR_SET_PDEATHSIG``); the host end of the veth is recorded too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from localmesh.kubelet._apiproxy import ApiProxy
from localmesh.kubelet._net import ClusterNetwork
from localmesh.kubelet._state import RunState
from localmesh.kubelet._sys import close_preexec, die_with_parent, enter_namespaces

INIT_SCRIPT = str(Path(__file__).with_name("_sandbox_init.py"))
_PYTHON = (sys.executable, "-I", "-S")


class SandboxError(RuntimeError):
    pass


def _preexec_new_group() -> None:
    os.setpgid(0, 0)
    die_with_parent()


def _prepare(spec: Mapping[str, Any], log_path: Path, scratch: Path) -> tuple[Path, BinaryIO]:
    """The spec file of a container instance beside its (empty) scratch directory, and its log opened."""
    scratch.mkdir(parents=True, exist_ok=True)
    spec_path = scratch.with_suffix(".json")
    spec_path.write_bytes(orjson.dumps({**spec, "scratch": str(scratch)}))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    return spec_path, open(log_path, "ab")  # closed by the caller once the child has it


class PodSandbox:
    def __init__(self, state: RunState, network: ClusterNetwork, pod_dir: Path, hostname: str, veth: str) -> None:
        self.state = state
        self.network = network
        self.dir = pod_dir
        self.hostname = hostname[:63]
        self.veth = veth
        self.ip: ipaddress.IPv4Address | None = None
        self._holder: asyncio.subprocess.Process | None = None
        self._record: dict[str, Any] | None = None
        self._proxy: ApiProxy | None = None

    @property
    def pid(self) -> int:
        assert self._holder is not None
        return self._holder.pid

    async def start(self, api: tuple[str, int] | None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        holder = await asyncio.create_subprocess_exec(
            "unshare", "--net", "--uts", "--", *_PYTHON, INIT_SCRIPT, "hold", self.hostname,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=_preexec_new_group)
        self._holder = holder
        self._record = self.state.add_process(holder.pid)
        assert holder.stdout is not None and holder.stderr is not None
        line = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                line = await holder.stdout.readline()
        if line != b"ready\n":
            err = (await holder.stderr.read(4096)).decode(errors="replace").strip()
            raise SandboxError(f"pod sandbox did not start: {err or 'no ready line'}")
        self.ip = self.network.allocate()
        await self.network.attach(holder.pid, self.veth, self.ip)
        if api is not None:
            self._proxy = ApiProxy(holder.pid, api)
            await self._proxy.start()

    async def launch(self, spec: Mapping[str, Any], env: Mapping[str, str], log_path: Path,
                     scratch: Path) -> asyncio.subprocess.Process:
        """Start one container instance: its root is built in a new mount namespace, then its command runs."""
        spec_path, log = _prepare(spec, log_path, scratch)
        preexec = enter_namespaces(self.pid, mount=False)
        started_r, started_w = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                "unshare", "--mount", "--propagation", "private", "--", *_PYTHON, INIT_SCRIPT, "container",
                str(spec_path), str(started_w), stdin=asyncio.subprocess.DEVNULL, stdout=log,
                stderr=asyncio.subprocess.STDOUT, env=dict(env), preexec_fn=preexec, pass_fds=(started_w,))
        except BaseException:
            os.close(started_r)
            raise
        finally:
            os.close(started_w)
            close_preexec(preexec)
            log.close()
        self.state.add_process(proc.pid)
        try:
            await asyncio.to_thread(os.read, started_r, 1)  # EOF once the command was exec'd (or failed)
        finally:
            os.close(started_r)
        return proc

    async def exec(self, pid: int, argv: Sequence[str], env: Mapping[str, str], *, stdin: bool,
                   stdout: int = asyncio.subprocess.PIPE,
                   stderr: int = asyncio.subprocess.PIPE) -> asyncio.subprocess.Process:
        """Run ``argv`` in the namespaces of container process ``pid``."""
        preexec = enter_namespaces(pid)
        try:
            return await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=stdout, stderr=stderr, env=dict(env), preexec_fn=preexec)
        finally:
            close_preexec(preexec)

    def forget(self) -> None:
        """A container process ended: drop ended processes from the run state."""
        self.state.prune_processes()

    async def stop(self) -> None:
        if self._proxy is not None:
            await self._proxy.stop()
            self._proxy = None
        # The veth goes first, while the namespace lives: deleting it then removes both ends at once,
        # where a namespace's own teardown frees its devices later, asynchronously.
        await self.network.detach(self.veth)
        holder, self._holder = self._holder, None
        if holder is not None:
            if holder.stdin is not None:
                holder.stdin.close()
            try:
                async with asyncio.timeout(5):
                    await holder.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(holder.pid, signal.SIGKILL)
                await holder.wait()
        if self.ip is not None:
            self.network.release(self.ip)
            self.ip = None
        if self._record is not None:
            self.state.remove("processes", self._record)
            self._record = None
        self.state.prune_processes()
