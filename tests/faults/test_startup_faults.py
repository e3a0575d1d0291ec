"""Start-up faults of the exporter process: etcd unreachable, or a wrong CA, at start (each failed
attempt logged with the address and the error; /healthz and /readyz answer, not ready, while it
connects); SIGTERM while the Kubernetes API is unreachable at start (exit 0, not a SIGKILL)."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from localmesh.testing.etcd import EtcdServer, EtcdTLS
from localmesh.testing.ports import free_port
from localmesh.testing.synthetic import synthetic_cluster
from tests.faults.harness import RESULTS, ExporterProcess, World, poll, seed_objects
from tests.faults.test_etcd_faults import SHAPE


async def healthz(exporter: ExporterProcess) -> int | None:
    try:
        async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{exporter.health_port}/healthz") as resp:
            return resp.status
    except aiohttp.ClientError:
        return None


async def test_etcd_unreachable_at_start_then_up(world: World, tmp_path: Path) -> None:
    seed_objects(world.sim, synthetic_cluster(SHAPE))
    etcd = EtcdServer(name="late")  # ports chosen, not started yet
    try:
        exporter = ExporterProcess(tmp_path, etcd.endpoint, world.kubeconfig)
        world.add(exporter)
        await exporter.start()

        async def attempts_logged() -> bool:
            return exporter.logs().count("Unable to connect to etcd, retrying") >= 3

        await poll(attempts_logged, "failed attempts logged")
        assert etcd.endpoint in exporter.logs()
        assert await healthz(exporter) == 200
        assert await exporter.readyz() == 500
        started = time.monotonic()
        await etcd.start()
        world.etcd = etcd
        await world.converged("start-up: etcd unreachable at start, then up", exporter, since=started)
    finally:
        await etcd.close()


async def test_wrong_ca_at_start_is_logged_and_sigterm_is_obeyed(
        world: World, etcd_tls_server: EtcdServer, tmp_path: Path) -> None:
    other_ca = EtcdTLS(tmp_path / "other-pki")
    config = tmp_path / "etcd-config.yaml"
    files = etcd_tls_server.tls.client("root")  # type: ignore[union-attr]
    config.write_text(f"endpoints:\n- {etcd_tls_server.endpoint}\ntrusted-ca-file: {other_ca.ca_file}\n"
                      f"cert-file: {files.cert_file}\nkey-file: {files.key_file}\n")
    exporter = ExporterProcess(tmp_path, etcd_tls_server.endpoint, world.kubeconfig, name="exporter-ca")
    exporter.args = [a if not a.startswith("--kvstore-opt=") else f"--kvstore-opt=etcd.config={config}"
                     for a in exporter.args]
    world.add(exporter)
    await exporter.start()

    async def tls_failure_logged() -> bool:
        return "TLS handshake problem" in exporter.logs()

    await poll(tls_failure_logged, "the TLS failure logged with a hint")
    assert await healthz(exporter) == 200 and await exporter.readyz() == 500
    assert await exporter.terminate() == 0
    other_ca.cleanup()


async def test_sigterm_while_the_kubernetes_api_is_unreachable_at_start(world: World, tmp_path: Path) -> None:
    port = free_port()  # nothing listens here
    kubeconfig = tmp_path / "unreachable.kubeconfig"
    kubeconfig.write_text(world.kubeconfig.read_text().replace(world.sim.url, f"http://127.0.0.1:{port}"))
    exporter = ExporterProcess(tmp_path, world.etcd.endpoint, kubeconfig, name="exporter-nokube")
    world.add(exporter)
    await exporter.start()

    async def waiting_for_namespaces() -> bool:
        return "Kubernetes request failed, retrying" in exporter.logs()

    await poll(waiting_for_namespaces, "start-up stuck on the unreachable API server")
    assert await exporter.readyz() == 500
    started = time.monotonic()
    assert await exporter.terminate() == 0  # SIGTERM obeyed: no SIGKILL needed
    RESULTS["start-up: SIGTERM while the Kubernetes API is unreachable (exit)"] = time.monotonic() - started
