"""KVStoreMesh faults, every component its own process: cluster1's exporter writes its etcd; the
KVStoreMesh of cluster2 mirrors it into cluster2's etcd. Each scenario ends with
``clustermesh-dbg verify --kvstoremesh`` equal: the cache is cluster1's state byte for byte (or,
for a refused remote, nothing is cached)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apiserver.clusterinfo import ClusterInfo
from apiserver.kvstore.drift import DriftReport
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstoremesh.verify import verify_cache
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.ports import free_ports
from tests.faults.harness import RESULTS, ExporterProcess, Process, World, poll
from tests.faults.test_etcd_faults import exporting, logged

LOCAL = ClusterInfo("cluster2", 2)


class Mesh:
    def __init__(self, world: World, local: EtcdServer) -> None:
        self.world = world
        self.local = local
        self.config_dir = world.tmp / "clustermesh"
        self.config_dir.mkdir()
        (self.config_dir / "cluster1").write_text(f"endpoints:\n- {world.etcd.endpoint}\n")
        # Taken together, so no two are the same (the metrics port is for tests that serve metrics).
        health_port, api_port, self.metrics_port = free_ports(3)
        self.process = world.add(Process("kvstoremesh", [
            "kvstoremesh", f"--cluster-name={LOCAL.name}", f"--cluster-id={LOCAL.id}",
            f"--clustermesh-config={self.config_dir}", f"--kvstore-opt=etcd.address={local.endpoint}",
            f"--health-port={health_port}", f"--api-serve-addr=127.0.0.1:{api_port}",
            "--clustermesh-drain-grace-period=0s", "--clustermesh-remote-status-interval=1s"], world.tmp))

    async def report(self) -> DriftReport:
        report = DriftReport("cache")
        local = await EtcdClient.connect(EtcdConfig(endpoints=(self.local.endpoint,)), timeout=10)
        try:
            remote = await EtcdClient.connect(EtcdConfig(endpoints=(self.world.etcd.endpoint,)), timeout=10,
                                              check_cluster_id=False)
            try:
                await verify_cache(LOCAL, local, "cluster1", remote, report)
            finally:
                await remote.close()
        finally:
            await local.close()
        return report

    async def converged(self, scenario: str, since: float, deadline: float = 180.0) -> float:
        last: list[str] = []

        async def equal() -> bool:
            try:
                report = await self.report()
            except Exception as exc:
                last[:] = [repr(exc)]
                return False
            last[:] = [report.text()]
            return report.equal

        try:
            await poll(equal, f"{scenario}: cache equal to the remote", deadline)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{last[0] if last else ''}") from None
        seconds = time.monotonic() - since
        RESULTS[scenario] = seconds
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "apiserver", "clustermesh-dbg", "verify", "--kvstoremesh",
            f"--cluster-name={LOCAL.name}", f"--cluster-id={LOCAL.id}",
            f"--kvstore-opt=etcd.address={self.local.endpoint}", f"--clustermesh-config={self.config_dir}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        assert proc.returncode == 0, out.decode()
        return seconds


@pytest.fixture
async def mesh(world: World, tmp_path: Path) -> AsyncIterator[tuple[ExporterProcess, Mesh]]:
    with EtcdServer(name="cluster2") as local:
        exporter = await exporting(world)
        mesh = Mesh(world, local)
        await mesh.process.start()
        await mesh.converged("kvstoremesh: initial mirror", time.monotonic())
        yield exporter, mesh
        await mesh.process.kill()


async def test_remote_etcd_wiped(mesh: tuple[ExporterProcess, Mesh]) -> None:
    exporter, m = mesh
    fault = time.monotonic()
    await m.world.etcd.kill()
    await m.world.etcd.restart(wipe=True)
    await poll(lambda: logged(exporter, "etcd store was reset; writing everything again"), "the exporter noticed")
    await m.world.converged("(remote) exporter after its etcd was wiped", exporter, since=fault)
    await m.converged("kvstoremesh: remote etcd wiped (emptyDir), exporter rewrote it", fault)


async def test_remote_flapping(mesh: tuple[ExporterProcess, Mesh]) -> None:
    exporter, m = mesh
    fault = time.monotonic()
    for _ in range(3):
        await m.world.etcd.kill()
        await poll(exporter.not_ready, "exporter not ready while its etcd is down")
        await m.world.etcd.start()
        await poll(exporter.ready, "exporter ready again")
    # Changes while the mirror reconnects.
    obj = m.world.sim.list("cilium.io/v2", "CiliumEndpoint")[0]
    m.world.sim.delete("cilium.io/v2", "CiliumEndpoint", obj["metadata"]["name"], obj["metadata"]["namespace"])
    await m.converged("kvstoremesh: remote flapping (3 x SIGKILL/restart), change meanwhile", fault)


async def test_remote_comes_back_with_our_own_cluster_id(mesh: tuple[ExporterProcess, Mesh]) -> None:
    exporter, m = mesh
    fault = time.monotonic()
    await exporter.kill()
    await m.world.etcd.kill()
    await m.world.etcd.restart(wipe=True)
    # cluster1's etcd now holds a cluster advertising ID 2, KVStoreMesh's own: refused, drained.
    impostor = m.world.exporter(name="exporter-id2")
    impostor.args = [a if not a.startswith("--cluster-id=") else "--cluster-id=2" for a in impostor.args]
    await impostor.start()
    await poll(lambda: logged_text(m.process, "which is the ID of the local cluster"), "refusal logged")
    await m.converged("kvstoremesh: remote restarted advertising our own cluster ID (refused, drained)", fault)


async def logged_text(process: Process, text: str) -> bool:
    return text in process.logs()
