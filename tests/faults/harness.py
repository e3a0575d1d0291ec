"""The fault suite's world: the Kubernetes API emulator, real etcd processes, and the exporter and
KVStoreMesh each as its own OS process (``python -m apiserver ...``, the container's command).

Every scenario ends with ``converged()``: ``clustermesh-dbg verify``'s comparison polled until
equal, with a generous deadline, and the time it took reported; then the CLI itself is run once
and must exit 0. Nothing here sleeps to wait: everything polls.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from apiserver.clusterinfo import ClusterInfo
from apiserver.clustermesh.options import ExporterOptions
from apiserver.clustermesh.verify import verify_export
from apiserver.kube import KubeOptions, build_client
from apiserver.kvstore.drift import DriftReport
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.options import KVStoreOptions
from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.polling import eventually
from localmesh.testing.ports import free_ports

CLUSTER = ClusterInfo("cluster1", 1)
DEADLINE = 180.0  # generous: 2 CPUs shared by many processes; the measured time is what is reported
RESULTS: dict[str, float] = {}  # scenario -> seconds to converge (printed at the end of the session)


async def poll(check: Callable[[], Awaitable[bool]], what: str, deadline: float = DEADLINE) -> float:
    """Poll ``check`` until true; the seconds it took. Fails after ``deadline``."""
    started = time.monotonic()
    await eventually(check, deadline, what, interval=0.05)
    return time.monotonic() - started


class Process:
    """One ``python -m apiserver <command>`` process; its output goes to a log file."""

    def __init__(self, name: str, args: list[str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        assert self.proc is None or self.proc.returncode is not None, f"{self.name} already running"
        self.starts += 1
        with self._open_log() as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "apiserver", *self.args, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def _open_log(self) -> BinaryIO:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed by the caller's with)
        log.write(f"--- start {self.starts}\n".encode())
        log.flush()
        return log

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def kill(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            await self.proc.wait()

    async def terminate(self, grace: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await self.proc.wait()
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class ExporterProcess(Process):
    def __init__(self, log_dir: Path, etcd_endpoint: str, kubeconfig: Path, *extra: str,
                 name: str = "exporter") -> None:
        self.health_port, self.metrics_port = free_ports(2)  # together: never the same port twice
        super().__init__(name, [
            "clustermesh", f"--cluster-name={CLUSTER.name}", f"--cluster-id={CLUSTER.id}",
            f"--kvstore-opt=etcd.address={etcd_endpoint}", f"--k8s-kubeconfig-path={kubeconfig}",
            f"--health-port={self.health_port}", f"--prometheus-serve-addr=127.0.0.1:{self.metrics_port}",
            *extra], log_dir)

    async def readyz(self) -> int | None:
        """HTTP status of /readyz; None when nothing answers."""
        try:
            async with aiohttp.ClientSession() as session, session.get(
                    f"http://127.0.0.1:{self.health_port}/readyz", timeout=aiohttp.ClientTimeout(total=5)) as resp:
                return resp.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    async def ready(self) -> bool:
        return await self.readyz() == 200

    async def not_ready(self) -> bool:
        return await self.readyz() != 200

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{self.metrics_port}/metrics") as resp:
            return await resp.text()


class World:
    """One cluster: emulator (in this process, fault-injectable), etcd, exporter process."""

    def __init__(self, tmp: Path, sim: KubeSim, etcd: EtcdServer) -> None:
        self.tmp = tmp
        self.sim = sim
        self.etcd = etcd
        self.kubeconfig = Path(sim.write_kubeconfig(tmp / "kubeconfig"))
        self.processes: list[Process] = []
        self.endpoints: list[str] | None = None  # several etcd members instead of ``etcd``

    @property
    def etcd_config_file(self) -> Path:
        """The etcd client YAML every process here reaches etcd with."""
        path = self.tmp / "etcd-config.yaml"
        endpoints = self.endpoints or [self.etcd.endpoint]
        path.write_text("endpoints:\n" + "".join(f"- {e}\n" for e in endpoints))
        return path

    def exporter(self, *extra: str, name: str = "exporter") -> ExporterProcess:
        process = ExporterProcess(self.tmp, self.etcd.endpoint, self.kubeconfig, *extra, name=name)
        if self.endpoints is not None:
            config = f"--kvstore-opt=etcd.config={self.etcd_config_file}"
            process.args = [config if a.startswith("--kvstore-opt=etcd.address=") else a for a in process.args]
        self.processes.append(process)
        return process

    def add(self, process: Process) -> Process:
        self.processes.append(process)
        return process

    async def replace_sim(self, sim: KubeSim) -> None:
        """Stop the emulator and serve ``sim`` on the same address (an API server restarted or
        restored: its objects and resourceVersions are whatever ``sim`` holds)."""
        port = int(self.sim.url.rsplit(":", 1)[1])
        await self.sim.stop()
        await sim.start(host="127.0.0.1", port=port)
        self.sim = sim

    async def drift(self) -> DriftReport:
        options = ExporterOptions(cluster=CLUSTER, kvstore=KVStoreOptions(config_file=str(self.etcd_config_file)))
        kube = await build_client(KubeOptions(kubeconfig_path=str(self.kubeconfig)))
        try:
            etcd = await self.etcd_client()
            try:
                return await verify_export(options, kube, etcd, timeout=60)
            finally:
                await etcd.close()
        finally:
            await kube.close()

    async def converged(self, scenario: str, exporter: ExporterProcess | None = None,
                        deadline: float = DEADLINE, since: float | None = None) -> float:
        """Poll until etcd equals what Kubernetes implies (and the exporter is ready); record and
        return the seconds it took (from ``since``, a ``time.monotonic()`` reading taken when the
        fault was injected, if given); then ``clustermesh-dbg verify`` must agree (exit 0)."""
        started = time.monotonic() if since is None else since
        last: list[str] = []

        async def equal() -> bool:
            try:
                report = await self.drift()
            except Exception as exc:
                last[:] = [f"verify failed: {exc!r}"]
                return False
            last[:] = [report.text()]
            return report.equal and (exporter is None or await exporter.ready())

        try:
            await poll(equal, f"{scenario}: verify equal", deadline)
        except AssertionError as exc:
            tail = exporter.logs()[-3000:] if exporter is not None else ""
            raise AssertionError(f"{exc}\n{last[0] if last else 'no report'}\n{tail}") from None
        seconds = time.monotonic() - started
        RESULTS[scenario] = seconds
        code, out = await self.verify_cli()
        assert code == 0, out
        return seconds

    async def verify_cli(self, *extra: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "apiserver", "clustermesh-dbg", "verify", f"--cluster-name={CLUSTER.name}",
            f"--cluster-id={CLUSTER.id}", f"--kvstore-opt=etcd.config={self.etcd_config_file}",
            f"--k8s-kubeconfig-path={self.kubeconfig}", *extra,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode()

    async def etcd_client(self) -> EtcdClient:
        endpoints = tuple(self.endpoints or [self.etcd.endpoint])
        return await EtcdClient.connect(EtcdConfig(endpoints=endpoints), timeout=10, check_cluster_id=False)

    async def close(self) -> None:
        for process in self.processes:
            await process.kill()


def seed_objects(sim: KubeSim, objects: Any) -> None:
    for obj in objects:
        sim.apply(obj)
