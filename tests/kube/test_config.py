"""Client configuration: flags, kubeconfig, URL override, and the errors when nothing is set."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from apiserver.kube import KubeConfigError, KubeOptions, add_kube_flags, build_client
from apiserver.kube.config import DEFAULT_BURST, DEFAULT_QPS, USER_AGENT


def _kubeconfig(path: Path, server: str, token: str = "sekret") -> Path:
    path.write_bytes(orjson.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": server}}],
        "users": [{"name": "t", "user": {"token": token}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
    }))
    return path


def test_flags_round_trip() -> None:
    parser = argparse.ArgumentParser()
    add_kube_flags(parser)
    defaults = KubeOptions.from_args(parser.parse_args([]))
    assert defaults == KubeOptions()
    assert (defaults.qps, defaults.burst) == (DEFAULT_QPS, DEFAULT_BURST)
    args = parser.parse_args([
        "--k8s-kubeconfig-path=/k", "--k8s-api-server-urls", "https://a:6443,https://b:6443",
        "--k8s-client-qps=5", "--k8s-client-burst=7", "--k8s-client-connection-timeout=1m30s",
        "--k8s-heartbeat-timeout", "5s", "--k8s-service-proxy-name=p"])
    opts = KubeOptions.from_args(args)
    assert opts.kubeconfig_path == "/k"
    assert opts.api_server_urls == ("https://a:6443", "https://b:6443")
    assert (opts.qps, opts.burst, opts.connection_timeout, opts.heartbeat_timeout) == (5, 7, 90, 5)
    assert opts.service_proxy_name == "p"


async def test_nothing_configured_names_the_flags() -> None:
    with pytest.raises(KubeConfigError, match="--k8s-kubeconfig-path or --k8s-api-server-urls"):
        await build_client(KubeOptions(), environ={})


async def test_missing_kubeconfig_file(tmp_path: Path) -> None:
    with pytest.raises(KubeConfigError, match="no such file"):
        await build_client(KubeOptions(kubeconfig_path=str(tmp_path / "nope")), environ={})


async def test_broken_kubeconfig(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(KubeConfigError, match=str(bad)):
        await build_client(KubeOptions(kubeconfig_path=str(bad)), environ={})


async def test_kubeconfig_with_url_override(tmp_path: Path) -> None:
    path = _kubeconfig(tmp_path / "kc", "http://127.0.0.1:1")
    async with await build_client(KubeOptions(kubeconfig_path=str(path)), environ={}) as kc:
        assert kc.host == "http://127.0.0.1:1"
        assert kc.api_client.configuration.api_key["BearerToken"] == "Bearer sekret"
        assert kc.api_client.user_agent == USER_AGENT
    opts = KubeOptions(kubeconfig_path=str(path), api_server_urls=("http://127.0.0.1:2/",))
    async with await build_client(opts, environ={}) as kc:
        # The override keeps the kubeconfig's credentials.
        assert kc.host == "http://127.0.0.1:2"
        assert kc.api_client.configuration.api_key["BearerToken"] == "Bearer sekret"


async def test_url_alone_and_bad_url() -> None:
    async with await build_client(KubeOptions(api_server_urls=("http://127.0.0.1:3",)), environ={}) as kc:
        assert kc.host == "http://127.0.0.1:3"
        assert not kc.api_client.configuration.api_key
    with pytest.raises(KubeConfigError, match="invalid --k8s-api-server-urls"):
        await build_client(KubeOptions(api_server_urls=("127.0.0.1:3",)), environ={})


@pytest.mark.skipif(Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists(),
                    reason="running in a pod: the service account files exist")
async def test_in_cluster_without_service_account_files() -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(KubeConfigError, match="in-cluster"):
        await build_client(KubeOptions(), environ=env)


_FRESH_PROCESS = """
import asyncio, sys
from apiserver.kube import KubeOptions, build_client

async def main():
    async with await build_client(KubeOptions(kubeconfig_path=sys.argv[1])) as kube:
        print(kube.host)
    generated = [m for m in sys.modules if m.startswith("kubernetes_asyncio.client.models.")]
    print(len(generated))
    from kubernetes_asyncio import client
    print(client.V1Pod.__name__, client.CoreV1Api.__name__)  # still there, loaded on first use

asyncio.run(main())
"""


def test_the_client_is_configured_without_loading_generated_models(tmp_path: Path) -> None:
    import subprocess
    import sys

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(orjson.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:6443"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}).decode())
    out = subprocess.run([sys.executable, "-c", _FRESH_PROCESS, str(kubeconfig)], capture_output=True,
                         text=True, check=True, timeout=60).stdout.split("\n")
    assert out[:3] == ["http://127.0.0.1:6443", "0", "V1Pod CoreV1Api"]
