"""Emulated clusters for clustermeshctl: one KubeSim per cluster, one kubeconfig with a context each,
seeded as the Cluster Mesh guide's clusters (names, IDs, Pod CIDRs 1x.0.0.0/8 + fd0x::/104)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest_asyncio
import yaml

from apiserver.ctl import main
from apiserver.ctl._manifests import default_manifest_dir
from localmesh.kubesim import KubeSim

MANIFESTS = default_manifest_dir()  # the repository's deploy/base
NS = "kube-system"


def guide_config(i: int, **extra: str) -> dict[str, Any]:
    data = {"cluster-name": f"cluster{i}", "cluster-id": str(i), "max-connected-clusters": "255",
            "identity-allocation-mode": "crd", "routing-mode": "tunnel", "tunnel-protocol": "vxlan",
            "cluster-pool-ipv4-cidr": f"{10 + i}.0.0.0/8", "cluster-pool-ipv6-cidr": f"fd0{i - 1}::/104", **extra}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cilium-config", "namespace": NS},
            "data": data}


def guide_status(address: str, remotes: Sequence[str]) -> str:
    """``status`` of a healthy cluster as the Cluster Mesh guide prints it: 3 nodes and 1 KVStoreMesh
    replica, each connected to every one of ``remotes``, one global service."""
    n = len(remotes)
    connections = "".join(f""" - {remote}: 3 configured, 3/3 connected
   KVStoreMesh: 1/1 configured, 1/1 connected
""" for remote in remotes)
    return f"""\
✅ Service "clustermesh-apiserver" of type "LoadBalancer" found
✅ Cluster access information is available:
 - {address}:2379
✅ Deployment clustermesh-apiserver is ready
\u2139\ufe0f KVStoreMesh is enabled

✅ All 3 nodes are connected to all clusters [min:{n} / avg:{n}.0 / max:{n}]
✅ All 1 KVStoreMesh replicas are connected to all clusters [min:{n} / avg:{n}.0 / max:{n}]

🔌 Cluster Connections:
{connections}
🔀 Global services: [ min:1 / avg:1.0 / max:1 ]"""


def seed(sim: KubeSim, i: int) -> None:
    sim.apply(guide_config(i))
    for n in range(3):
        sim.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": f"cluster{i}-node{n}"},
                   "status": {"addresses": [{"type": "InternalIP", "address": f"172.{20 + i}.0.{n + 2}"}]}})
        sim.apply({"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": f"cluster{i}-node{n}"},
                   "spec": {"ipam": {"podCIDRs": [f"{10 + i}.0.{n}.0/24"]}}})


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


@dataclass
class Clusters:
    sims: dict[str, KubeSim]
    kubeconfig: Path

    def sim(self, context: str) -> KubeSim:
        return self.sims[context]

    def obj(self, context: str, kind: str, name: str, api_version: str = "v1") -> dict[str, Any] | None:
        return self.sims[context].get(api_version, kind, name, namespace=NS)

    async def run(self, *argv: str) -> Result:
        """The CLI in a worker thread (it runs its own event loop), output captured."""
        out, err = io.StringIO(), io.StringIO()

        def call() -> int:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                return main(["--kubeconfig", str(self.kubeconfig), *argv])

        code = await asyncio.to_thread(call)
        return Result(code, out.getvalue(), err.getvalue())

    async def enable(self, context: str, *extra: str) -> Result:
        return await self.run("enable", "--context", context, "--service-type", "LoadBalancer", *extra)

    def assign_lb(self, context: str, ip: str) -> None:
        """What a LoadBalancer controller does: an ingress IP on the Service's status."""
        svc = self.obj(context, "Service", "clustermesh-apiserver")
        assert svc is not None
        svc["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
        self.sims[context].apply(svc)


def write_kubeconfig(path: Path, sims: dict[str, KubeSim]) -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": next(iter(sims)),
           "clusters": [{"name": n, "cluster": {"server": s.url}} for n, s in sims.items()],
           "users": [{"name": n, "user": {"token": "kubesim"}} for n in sims],
           "contexts": [{"name": n, "context": {"cluster": n, "user": n}} for n in sims]}
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest_asyncio.fixture
async def clusters(tmp_path: Path) -> AsyncIterator[Clusters]:
    sims: dict[str, KubeSim] = {}
    try:
        for i in (1, 2, 3):
            sim = KubeSim()
            await sim.start()
            sims[f"cluster{i}"] = sim
            seed(sim, i)
        yield Clusters(sims, write_kubeconfig(tmp_path / "kubeconfig", sims))
    finally:
        for sim in sims.values():
            await sim.stop()
