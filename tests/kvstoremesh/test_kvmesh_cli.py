"""``clustermesh-apiserver kvstoremesh`` / ``kvstoremesh-dbg``: flags, validation, and a real process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from kvmesh_etcd import etcds, seed, write_remote_config
from kvmesh_helpers import RemoteData, eventually

from apiserver.cli import build_parser
from apiserver.cli import main as cli_main
from apiserver.cli.kvstoremesh import settings_from_args
from localmesh.testing.ports import free_port, free_ports
from localmesh.testing.processes import answers_ready


def parse(*argv: str) -> object:
    return build_parser("kvstoremesh").parse_args(["kvstoremesh", *argv])


def test_helm_arguments_are_accepted(tmp_path: Path) -> None:
    etcd_config = tmp_path / "etcd-config.yaml"
    etcd_config.write_text("endpoints:\n- https://127.0.0.1:2379\n")
    args = parse("--cluster-name=cluster1", "--cluster-id=1", f"--kvstore-opt=etcd.config={etcd_config}",
                 "--kvstore-opt=etcd.qps=100", "--kvstore-opt=etcd.bootstrapQps=10000",
                 "--kvstore-opt=etcd.maxInflight=10", f"--clustermesh-config={tmp_path}",
                 "--max-connected-clusters=255", "--clustermesh-cache-ttl=0s", "--health-port=9881",
                 "--prometheus-serve-addr=:9964", "--controller-group-metrics=all", "--enable-heartbeat=false")
    settings = settings_from_args(args)  # type: ignore[arg-type]
    assert settings.cluster.name == "cluster1" and settings.health_port == 9881
    assert settings.prometheus_serve_addr == ":9964" and settings.enable_heartbeat is False
    assert (settings.kvstore.qps, settings.kvstore.bootstrap_qps, settings.kvstore.max_inflight) == (100, 10000, 10)
    assert settings.mesh.cache_ttl == 0 and settings.mesh.drain_grace_period == 180


def test_defaults(tmp_path: Path) -> None:
    args = parse("--cluster-name=c1", "--cluster-id=7", f"--clustermesh-config={tmp_path}",
                 "--kvstore-opt", "etcd.address=http://127.0.0.1:2379")
    s = settings_from_args(args)  # type: ignore[arg-type]
    assert (s.mesh.per_cluster_ready_timeout, s.mesh.global_ready_timeout, s.mesh.cache_ttl) == (15, 600, 0)
    assert (s.health_port, s.api_serve_addr, s.prometheus_serve_addr) == (9880, "localhost:9889", "")
    assert s.mesh.disable_drain_on_disconnection is False and s.enable_heartbeat is False
    args = parse("--cluster-name=c1", "--cluster-id=7", f"--clustermesh-config={tmp_path}",
                 "--kvstore-opt", "etcd.address=http://127.0.0.1:2379", "--disable-drain-on-disconnection",
                 "--clustermesh-drain-grace-period=2s", "--per-cluster-ready-timeout=1m30s")
    s = settings_from_args(args)  # type: ignore[arg-type]
    assert s.mesh.disable_drain_on_disconnection and s.mesh.drain_grace_period == 2
    assert s.mesh.per_cluster_ready_timeout == 90


@pytest.mark.parametrize(("limit", "page_size"), [
    pytest.param(None, 256, id="default"), pytest.param("128", 128, id="set"),
    pytest.param("+5", 5, id="go-sign"), pytest.param("0", 0, id="zero-unpaged"),
])
def test_etcd_limit_is_the_remote_page_size(tmp_path: Path, limit: str | None, page_size: int) -> None:
    extra = [] if limit is None else ["--kvstore-opt", f"etcd.limit={limit}"]
    args = parse("--cluster-name=c1", "--cluster-id=7", f"--clustermesh-config={tmp_path}",
                 "--kvstore-opt", "etcd.address=http://127.0.0.1:2379", *extra)
    assert settings_from_args(args).mesh.list_page_size == page_size  # type: ignore[arg-type]


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--cluster-id=0"], "invalid cluster-id 0", id="id-zero"),
    pytest.param(["--cluster-id=256"], "invalid cluster-id 256", id="id-too-big"),
    pytest.param(["--cluster-name=default"], "default cluster name", id="default-name"),
    pytest.param(["--max-connected-clusters=300"], "must be one of 255 or 511", id="max-clusters"),
    pytest.param(["--clustermesh-config="], "--clustermesh-config is required", id="no-config-dir"),
    pytest.param(["--clustermesh-config=/nonexistent"], "is not a directory", id="missing-config-dir"),
    pytest.param(["--kvstore=consul"], "only etcd", id="kvstore"),
    pytest.param(["--kvstore-opt", "etcd.config=/nonexistent.yaml"], "does not exist", id="etcd-config"),
    pytest.param(["--kvstore-opt", "etcd.qps=fast"], "etcd.qps", id="qps"),
    pytest.param(["--kvstore-opt", "etcd.bogus=1"], "unknown kvstore configuration key", id="unknown-opt"),
    pytest.param(["--kvstore-lease-ttl=1s"], "--kvstore-lease-ttl", id="lease-ttl"),
    pytest.param(["--api-serve-addr=nowhere"], "invalid listen address", id="api-addr"),
    pytest.param(["--clustermesh-cache-ttl=-1s"], "must not be negative", id="negative-ttl"),
])
def test_invalid_flags_exit_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   argv: list[str], message: str) -> None:
    base = {"--cluster-name": "c1", "--cluster-id": "1", "--clustermesh-config": str(tmp_path)}
    for arg in argv:
        base.pop(arg.split("=", 1)[0], None)
    full = [f"{k}={v}" for k, v in base.items()]
    if not any(a.startswith("etcd.") for a in argv):
        full += ["--kvstore-opt", "etcd.address=http://127.0.0.1:1"]
    code = cli_main(["kvstoremesh", *full, *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("Error: ")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_dbg_reports_an_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert cli_main(["kvstoremesh-dbg", "status", "-H", f"127.0.0.1:{port}"]) == 1
    assert f"is KVStoreMesh running and serving the API on 127.0.0.1:{port}?" in capsys.readouterr().out


@pytest.mark.slow
async def test_real_process_serves_readyz_api_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    config_dir = tmp_path / "clustermesh"
    config_dir.mkdir()
    health, api, prom = free_ports(3)
    async with etcds("local", "r2") as srv:
        await seed(srv["r2"], RemoteData.sample("r2", 2))
        write_remote_config(config_dir, "r2", srv["r2"].endpoint)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "apiserver", "kvstoremesh", "--cluster-name=local", "--cluster-id=1",
            f"--clustermesh-config={config_dir}", "--kvstore-opt", f"etcd.address={srv['local'].endpoint}",
            f"--health-port={health}", f"--api-serve-addr=127.0.0.1:{api}",
            f"--prometheus-serve-addr=127.0.0.1:{prom}", "--enable-heartbeat",
            "--clustermesh-remote-heartbeat-timeout=0s", "--clustermesh-config-poll-interval=100ms",
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(Path(__file__).parents[2]),
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        try:
            async with aiohttp.ClientSession() as session:
                await eventually(lambda: answers_ready(session, health), timeout=30, what="/readyz")
                async with session.get(f"http://127.0.0.1:{prom}/metrics") as resp:
                    text = await resp.text()
                    assert "cilium_kvstoremesh_bootstrap_seconds" in text
                    assert ('cilium_kvstoremesh_api_limiter_processed_requests_total{api_call="etcd",'
                            'outcome="success",return_code="200"}') in text
            dbg = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "apiserver", "kvstoremesh-dbg", "status", "-o", "json",
                f"--server-address=127.0.0.1:{api}", stdout=subprocess.PIPE,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
            out, _ = await dbg.communicate()
            assert dbg.returncode == 0
            (entry,) = json.loads(out)
            assert entry["name"] == "r2" and entry["ready"] is True and entry["num-nodes"] == 2
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert b"KVStoreMesh stopped" in err
