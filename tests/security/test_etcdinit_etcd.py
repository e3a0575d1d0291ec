"""``clustermesh-apiserver etcdinit`` for real: run it, start etcd with TLS on the result, read back."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from meshtest import run_cli, run_etcdinit

from apiserver.cli import etcdinit as etcdinit_cli
from apiserver.kvstore import PermissionDeniedError
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.etcd.auth import Grant
from apiserver.security.roles import clustermesh_auth_plan
from localmesh.testing.etcd import EtcdServer, EtcdTLS

Snapshot = tuple[dict[str, list[str]], dict[str, list[Grant]]]


async def connect(server: EtcdServer, user: str) -> EtcdClient:
    assert server.tls is not None
    return await EtcdClient.connect(EtcdConfig.from_yaml(server.tls.client_config(user, [server.client_url])))


async def read_auth_state(server: EtcdServer) -> Snapshot:
    async with await connect(server, "admin-c1") as admin:
        users = {u: sorted(await admin.user_get(u)) for u in await admin.user_list()}
        roles = {r: sorted(await admin.role_get(r)) for r in await admin.role_list()}
    return users, roles


async def test_twice_gives_the_same_users_and_roles_and_wipes_data(tmp_path: Path) -> None:
    server = EtcdServer(tls=EtcdTLS(tmp_path / "pki"), name="clustermesh-apiserver")
    try:
        server.data_dir.mkdir(parents=True)
        first_run = run_etcdinit(server.data_dir, "--cluster-name=c1")
        assert first_run.returncode == 0, first_run.stderr
        assert "Etcd init completed" in first_run.stderr
        await server.start()
        first = await read_auth_state(server)
        async with await connect(server, "admin-c1") as admin:
            await admin.put("cilium/state/leftover", b"from the first run")
        await server.stop()

        # Second run: the cluster name from the environment, as the Helm init container passes it.
        second_run = run_etcdinit(server.data_dir, env={"CILIUM_CLUSTER_NAME": "c1"})
        assert second_run.returncode == 0, second_run.stderr
        await server.start()
        second = await read_auth_state(server)
        async with await connect(server, "admin-c1") as admin:
            assert await admin.get("cilium/state/leftover") is None  # the data dir was emptied
        async with await connect(server, "nobody") as anonymous:
            with pytest.raises(PermissionDeniedError):  # auth is on: an unknown CN gets nothing
                await anonymous.get("cilium/.heartbeat")
    finally:
        server.close_sync()

    assert first == second
    plan = clustermesh_auth_plan("c1")
    users, roles = first
    assert users == {u.name: sorted(u.roles) for u in plan.users}
    assert {r: g for r, g in roles.items() if r != "root"} == {
        r.name: sorted(r.grants) for r in plan.roles if not r.builtin}
    assert roles.get("root", []) == []  # the built-in role has no ranges (it allows everything)


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--etcd-binary=/nonexistent/etcd"], "does not exist or is not executable", id="no-binary"),
    pytest.param(["--etcd-data-dir=/nonexistent/data"], "'/nonexistent/data' does not exist", id="no-data-dir"),
])
def test_cli_errors_are_clear(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("etcdinit", f"--etcd-data-dir={tmp_path}", "--etcd-client-port=1", "--etcd-peer-port=2",
                     *args)
    assert result.returncode == 1
    assert "Failed to initialise etcd" in result.stderr and message in result.stderr


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    etcdinit_cli.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_defaults_env_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLUSTER_NAME", "TIMEOUT", "DEBUG", "ETCD_DATA_DIR"):
        monkeypatch.delenv(f"CILIUM_{var}", raising=False)
    args = parse([])
    assert (args.etcd_data_dir, args.etcd_initial_cluster_token, args.etcd_cluster_name, args.cluster_name,
            args.timeout, args.debug, args.etcd_binary, args.etcd_client_port) == (
        "/var/run/etcd", "clustermesh-apiserver", "clustermesh-apiserver", "default", 120.0, False, "etcd", 2379)
    monkeypatch.setenv("CILIUM_CLUSTER_NAME", "from-env")
    monkeypatch.setenv("CILIUM_TIMEOUT", "30s")
    monkeypatch.setenv("CILIUM_DEBUG", "true")
    monkeypatch.setenv("CILIUM_ETCD_DATA_DIR", "/data")
    args = parse([])
    assert (args.cluster_name, args.timeout, args.debug, args.etcd_data_dir) == ("from-env", 30.0, True, "/data")
    args = parse(["--cluster-name=flag", "--timeout=1m30s", "--debug=false"])
    assert (args.cluster_name, args.timeout, args.debug) == ("flag", 90.0, False)


def test_cli_hides_test_only_flags() -> None:
    parser = argparse.ArgumentParser()
    etcdinit_cli.add_arguments(parser)
    text = parser.format_help()
    assert "--etcd-data-dir" in text and "--cluster-name" in text
    assert "--etcd-binary" not in text and "--etcd-client-port" not in text
