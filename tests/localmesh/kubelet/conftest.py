"""A TLS kubesim with a local kubelet for node ``node-1`` (root only), driven by real kubectl."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from localmesh.kubelet import BackoffPolicy, Kubelet, local_kubelet
from localmesh.kubesim import KubeSim, ServerTLS
from localmesh.testing import polling

IMAGE = "ghcr.io/clustermesh-python/clustermesh-apiserver:dev"
NODE = "node-1"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the local kubelet needs root")


@dataclass
class Cluster:
    sim: KubeSim
    kubelet: Kubelet
    kubeconfig: Path

    async def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> tuple[int, str, str]:
        """Real kubectl, run without blocking the loop that serves the emulator."""
        proc = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(self.kubeconfig), *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(input.encode() if input is not None else None)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: exit {proc.returncode}: {err.decode()}")
        return proc.returncode or 0, out.decode(), err.decode()

    def pod(self, name: str, namespace: str = "default") -> dict[str, Any] | None:
        return self.sim.get("v1", "Pod", name, namespace)

    def condition(self, name: str, kind: str) -> str | None:
        pod = self.pod(name) or {}
        for c in (pod.get("status") or {}).get("conditions") or []:
            if c["type"] == kind:
                return str(c["status"])
        return None


async def eventually(check: Callable[[], Any], within: float = 60.0, interval: float = 0.1) -> Any:
    """Poll ``check`` until it returns a truthy value; fail after ``within`` seconds."""
    return await polling.eventually(check, within, interval=interval)


def pod_manifest(name: str, containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    for c in containers + spec.get("initContainers", []):
        c.setdefault("image", IMAGE)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                            "labels": {"app": name}},
            "spec": {"nodeName": NODE, "containers": containers, **spec}}


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    if os.geteuid() != 0:
        pytest.skip("the local kubelet needs root")
    sim = KubeSim()
    await sim.start(tls=ServerTLS.self_signed(tmp_path / "tls"))
    try:
        async with local_kubelet(sim, node_name=NODE, workdir=tmp_path,
                                 backoff=BackoffPolicy(initial=0.5, maximum=2.0, reset_after=600.0)) as kubelet:
            yield Cluster(sim, kubelet, tmp_path / f"{NODE}.kubeconfig")
    finally:
        await sim.stop()

async def run_in(cluster: Cluster, pod: str, container: str, *argv: str) -> tuple[int, str, str]:
    """Exec through the kubelet's NodeRuntime: (exit code, stdout, stderr)."""
    proc = await cluster.kubelet.exec("default", pod, container, list(argv), stdin=False, tty=False)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def shell(name: str, script: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": ["/bin/sh", "-c", script], **extra}


def exists(path: str | Path) -> bool:
    return os.path.exists(path)


def read_text(path: str | Path) -> str:
    return Path(path).read_text()
