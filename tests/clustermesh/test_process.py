"""``clustermesh-apiserver clustermesh`` as a real process: flags, probes, metrics, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from localmesh.testing.ports import free_ports
from localmesh.testing.processes import answers_ready, child_process
from localmesh.testing.synthetic import ClusterShape, synthetic_cluster
from tests.clustermesh.conftest import dump_etcd, wait_for

# The exact arguments of the upstream Helm chart's apiserver container, with test ports.
HELM_ARGS = [
    "--cluster-name=cluster1", "--cluster-id=1",
    "--kvstore-opt=etcd.qps=20", "--kvstore-opt=etcd.bootstrapQps=10000",
    "--max-connected-clusters=255", "--controller-group-metrics=all",
]


async def run_cli(*args: str, timeout: float = 30.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        pytest.param("--cluster-id=256", "invalid cluster-id 256", id="id-out-of-range"),
        pytest.param("--max-connected-clusters=300", "must be one of 255 or 511", id="max-clusters"),
        pytest.param("--cluster-name=Bad_Name", "invalid cluster name", id="bad-name"),
        pytest.param("--kvstore-lease-ttl=10s", "--kvstore-lease-ttl", id="lease-ttl-too-short"),
        pytest.param("--kvstore-lease-ttl=forever", "invalid duration", id="lease-ttl-garbage"),
        pytest.param("--kvstore=consul", "only etcd", id="kvstore-type"),
    ],
)
async def test_invalid_flags_are_refused_before_writing(etcd_server: EtcdServer, flag: str, message: str) -> None:
    args = ["clustermesh", "--cluster-name=cluster1", "--cluster-id=1",
            f"--kvstore-opt=etcd.address={etcd_server.endpoint}", flag]
    code, out = await run_cli(*args)
    assert code != 0
    assert message in out
    assert await dump_etcd(etcd_server.endpoint) == {}


async def test_default_name_with_id_is_refused(etcd_server: EtcdServer) -> None:
    code, out = await run_cli("clustermesh", "--cluster-id=3", f"--kvstore-opt=etcd.address={etcd_server.endpoint}")
    assert code != 0 and "cannot use default cluster name" in out


async def test_missing_etcd_config_file_is_a_clear_error() -> None:
    code, out = await run_cli("clustermesh", "--cluster-name=c1", "--cluster-id=1",
                              "--kvstore-opt=etcd.config=/nonexistent/etcd-config.yaml")
    assert code != 0 and "/nonexistent/etcd-config.yaml" in out


async def test_process_exports_serves_probes_and_stops_on_sigterm(
        etcd_server: EtcdServer, kubesim: KubeSim, tmp_path: Path) -> None:
    for obj in synthetic_cluster(ClusterShape(name="cluster1")):
        kubesim.apply(obj)
    kubeconfig = kubesim.write_kubeconfig(tmp_path / "kubeconfig")
    etcd_config = tmp_path / "etcd-config.yaml"
    etcd_config.write_text(f"endpoints:\n- {etcd_server.endpoint}\n")
    health_port, metrics_port = free_ports(2)
    async with child_process(
        sys.executable, "-m", "apiserver", "clustermesh", *HELM_ARGS,
        f"--kvstore-opt=etcd.config={etcd_config}", f"--k8s-kubeconfig-path={kubeconfig}",
        f"--health-port={health_port}", f"--prometheus-serve-addr=127.0.0.1:{metrics_port}",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}) as proc:
        async with aiohttp.ClientSession() as session:
            await wait_for(lambda: answers_ready(session, health_port), 30, "/readyz 200")
            async with session.get(f"http://127.0.0.1:{health_port}/healthz") as resp:
                assert resp.status == 200, await resp.text()
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                text = await resp.text()
        assert 'cilium_clustermesh_apiserver_kvstore_initial_sync_completed{action="write"' in text
        assert "cilium_clustermesh_apiserver_bootstrap_seconds{source_cluster=\"cluster1\"}" in text
        assert 'cilium_clustermesh_apiserver_kube_requests_total{resource="ciliumnodes",verb="list"} 1.0' in text
        # The etcd limiter: Helm's qps (burst) and at least the data, canaries and config written through it.
        assert 'cilium_clustermesh_apiserver_api_limiter_rate_limit{api_call="etcd",value="burst"} 20.0' in text
        written = re.search(r'cilium_clustermesh_apiserver_api_limiter_processed_requests_total\{api_call="etcd",'
                            r'outcome="success",return_code="200"\} (\S+)', text)
        assert written is not None and float(written.group(1)) >= 5
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 15)
        assert proc.returncode == 0
    assert proc.stderr is not None
    logs = (await proc.stderr.read()).decode()
    assert "msg=\"Initial synchronization complete\"" in logs
