"""One container of a pod: its instances (start, probes, exit), restarts with crash-loop back-off, and
its status as kubelet reports it (``ContainerStatus``: state, lastState, ready, started, restartCount).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from apiserver._logging import get_logger
from apiserver._tasks import cancel_and_wait
from localmesh.kubelet._backoff import CrashBackoff
from localmesh.kubelet._fields import ConfigError
from localmesh.kubelet._probes import ProbeSpec, check_once, run_probe
from localmesh.kubelet._sandbox import PodSandbox

log = get_logger(__name__)

Obj = dict[str, Any]
CONFIG_RETRY = 1.0


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exit_code(returncode: int) -> int:
    """A process killed by signal N exits, as containers report it, with 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class PodContext(Protocol):
    """What a container asks of its pod."""

    sandbox: PodSandbox
    backoff_factory: Callable[[], CrashBackoff]

    @property
    def pod_ip(self) -> str: ...
    @property
    def title(self) -> str: ...
    def env_for(self, container: Obj) -> tuple[dict[str, str], list[str]]: ...
    def container_spec(self, container: Obj, argv: list[str]) -> dict[str, Any]: ...
    def container_dir(self, name: str) -> Path: ...
    def changed(self) -> None: ...
    def event(self, reason: str, message: str, *, warning: bool = False) -> None: ...
    def grace_period(self) -> float: ...


class Container:
    def __init__(self, pod: PodContext, spec: Obj, *, init: bool = False) -> None:
        self.pod = pod
        self.spec = spec
        self.name = str(spec["name"])
        self.image = str(spec.get("image", ""))
        self.init = init
        self.restart_count = 0
        self.state: Obj = {"waiting": {"reason": "PodInitializing" if not init else "ContainerCreating"}}
        self.last_state: Obj = {}
        self.ready = False
        self.started: bool | None = False
        self.container_id = ""
        self.proc: asyncio.subprocess.Process | None = None
        self.env: dict[str, str] = {}
        self._backoff = pod.backoff_factory()
        self._stopping = False
        self._kill_reason = ""

    # -- status --------------------------------------------------------------------------------------

    def status(self) -> Obj:
        digest = hashlib.sha256(self.image.encode()).hexdigest()
        out: Obj = {"name": self.name, "image": self.image,
                    "imageID": f"{self.image.split('@')[0].rsplit(':', 1)[0]}@sha256:{digest}",
                    "ready": self.ready, "restartCount": self.restart_count, "state": self.state,
                    "lastState": self.last_state, "started": bool(self.started)}
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    def log_path(self, restart: int) -> Path:
        return self.pod.container_dir(self.name) / f"{restart}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    # -- lifecycle -----------------------------------------------------------------------------------

    async def run(self, restart_policy: str) -> int:
        """Run instances until one ends for good under ``restart_policy``; returns its exit code."""
        while True:
            try:
                started_at = time.monotonic()
                code = await self._instance()
            except ConfigError as exc:
                self.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
                self.pod.changed()
                self.pod.event("Failed", f"Error: {exc}", warning=True)
                await asyncio.sleep(CONFIG_RETRY)
                continue
            if self._stopping or restart_policy == "Never" or (restart_policy == "OnFailure" and code == 0):
                return code
            self.last_state = self.state
            delay = self._backoff.delay(started_at, time.monotonic())
            if delay > 0:
                self.state = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                    f"back-off {delay:g}s restarting failed container={self.name} pod={self.pod.title}")}}
                self.pod.changed()
                self.pod.event("BackOff", "Back-off restarting failed container", warning=True)
                await asyncio.sleep(delay)
            self.restart_count += 1

    async def _instance(self) -> int:
        env, argv = self.pod.env_for(self.spec)
        spec = self.pod.container_spec(self.spec, argv)
        scratch = self.pod.container_dir(self.name) / f"root-{self.restart_count}"
        self.pod.event("Pulled", f'Container image "{self.image}" already present on machine')
        self.pod.event("Created", f"Created container: {self.name}")
        proc = await self.pod.sandbox.launch(spec, env, self.log_path(self.restart_count), scratch)
        self.proc, self.env, self._kill_reason = proc, env, ""
        self.container_id = f"localmesh://{self.pod.sandbox.hostname}-{self.name}-{proc.pid}"
        started = now_rfc3339()
        self.state = {"running": {"startedAt": started}}
        probes = {k: ProbeSpec.parse(self.spec[k]) for k in ("startupProbe", "livenessProbe", "readinessProbe")
                  if self.spec.get(k) and not self.init}
        self.started = "startupProbe" not in probes
        self.ready = "readinessProbe" not in probes and not self.init
        self.pod.changed()
        self.pod.event("Started", f"Started container {self.name}")
        tasks = [asyncio.create_task(self._probes(probes), name=f"probes-{self.name}")] if probes else []
        try:
            returncode = await proc.wait()
        finally:
            await cancel_and_wait(*tasks)
        self.pod.sandbox.forget()
        code = exit_code(returncode)
        reason = "Completed" if code == 0 else "Error"
        self.state = {"terminated": {"exitCode": code, "reason": reason, "startedAt": started,
                                     "finishedAt": now_rfc3339(), "containerID": self.container_id}}
        if returncode < 0:
            self.state["terminated"]["signal"] = -returncode
        self.ready = False
        self.pod.changed()
        return code

    async def _probes(self, probes: Mapping[str, ProbeSpec]) -> None:
        def check(spec: ProbeSpec) -> Callable[[], Any]:
            return lambda: check_once(spec, self.spec, self.pod.pod_ip, self._exec_probe)

        startup = probes.get("startupProbe")
        if startup is not None:
            ok = asyncio.Event()
            failed = asyncio.Event()

            def on_startup(result: bool) -> None:
                (ok if result else failed).set()

            task = asyncio.create_task(run_probe(startup, check(startup), on_startup, initial=True))
            try:
                await asyncio.wait([asyncio.create_task(ok.wait()), asyncio.create_task(failed.wait())],
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                await cancel_and_wait(task)
            if failed.is_set():
                await self._fail_probe("Startup")
                return
            self.started = True
            self.pod.changed()
        tasks: list[asyncio.Task[None]] = []
        if "readinessProbe" in probes:
            spec = probes["readinessProbe"]
            tasks.append(asyncio.create_task(run_probe(spec, check(spec), self._on_ready, initial=False)))
        if "livenessProbe" in probes:
            spec = probes["livenessProbe"]
            tasks.append(asyncio.create_task(run_probe(spec, check(spec), self._on_live, initial=True)))
        try:
            await asyncio.gather(*tasks)
        finally:
            await cancel_and_wait(*tasks)

    def _on_ready(self, result: bool) -> None:
        if self.ready != result and self.running:
            self.ready = result
            self.pod.changed()
            if not result:
                self.pod.event("Unhealthy", "Readiness probe failed", warning=True)

    def _on_live(self, result: bool) -> None:
        if not result:
            asyncio.get_running_loop().create_task(self._fail_probe("Liveness"))

    async def _fail_probe(self, kind: str) -> None:
        self.pod.event("Unhealthy", f"{kind} probe failed", warning=True)
        self.pod.event("Killing", f"Container {self.name} failed {kind.lower()} probe, will be restarted")
        await self.kill(self.pod.grace_period())

    async def _exec_probe(self, argv: Sequence[str], timeout: float) -> int:
        proc = self.proc
        if proc is None:
            return -1
        child = await self.pod.sandbox.exec(proc.pid, argv, self.env, stdin=False,
                                            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            async with asyncio.timeout(timeout):
                return await child.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
            return -1

    async def kill(self, grace: float) -> None:
        """SIGTERM to the container's process group, SIGKILL after ``grace`` seconds."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(grace):
                await proc.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()

    async def stop(self, grace: float) -> None:
        self._stopping = True
        await self.kill(grace)
