"""The emulator driven by the real kubectl binary (subprocesses), through a written kubeconfig."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from localmesh.kubesim import KubeSim
from tests.localmesh.conftest import Kubectl

KUBECTL = shutil.which("kubectl") or ("/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None)
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")

NODE_YAML = """\
apiVersion: cilium.io/v2
kind: CiliumNode
metadata:
  name: node-a
  labels: {zone: a}
spec:
  addresses: [{type: InternalIP, ip: 10.0.0.1}]
"""
SERVICE_YAML = """\
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80}, {name: https, port: 443}]
"""


async def test_get(kubesim: KubeSim, kubectl: Kubectl) -> None:
    run = kubectl
    kubesim.apply({"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": "n1"}})
    listed = await run("get", "ciliumnodes", "-A")
    assert listed.code == 0, listed.err
    assert listed.out.split("\n")[0].split() == ["NAME", "AGE"] and listed.out.split("\n")[1].startswith("n1 ")
    one = await run("get", "cn", "n1", "-o", "json")
    stored = kubesim.get("cilium.io/v2", "CiliumNode", "n1")
    assert stored is not None and json.loads(one.out)["metadata"]["uid"] == stored["metadata"]["uid"]
    missing = await run("get", "cn", "nope")
    assert missing.code == 1
    assert 'Error from server (NotFound): ciliumnodes.cilium.io "nope" not found' in missing.err
    namespaces = await run("get", "ns")
    assert ["kube-system", "Active"] in [line.split()[:2] for line in namespaces.out.splitlines()]
    crds = await run("get", "crd", "-o", "name")
    assert "customresourcedefinition.apiextensions.k8s.io/ciliumnodes.cilium.io" in crds.out.split()


async def test_create_apply_delete(kubesim: KubeSim, kubectl: Kubectl, tmp_path: Path) -> None:
    run = kubectl
    node, svc = tmp_path / "node.yaml", tmp_path / "svc.yaml"
    node.write_text(NODE_YAML)
    svc.write_text(SERVICE_YAML)
    created = await run("create", "-f", str(node))
    assert created.code == 0, created.err
    assert created.out.strip() == "ciliumnode.cilium.io/node-a created"
    again = await run("create", "-f", str(node))
    assert again.code == 1 and "(AlreadyExists)" in again.err

    first = await run("apply", "-f", str(svc))
    assert first.out.strip() == "service/web created", first.err
    svc.write_text(SERVICE_YAML.replace("443", "8443"))
    second = await run("apply", "-f", str(svc))
    assert second.out.strip() == "service/web configured", second.err
    assert kubesim.request_counts["patch", "services"] == 1
    stored = kubesim.get("v1", "Service", "web", "default")
    assert stored is not None
    assert [(p["name"], p["port"]) for p in stored["spec"]["ports"]] == [("http", 80), ("https", 8443)]
    assert "$setElementOrder/ports" not in json.dumps(stored)
    unchanged = await run("apply", "-f", str(svc))
    assert unchanged.out.strip() == "service/web unchanged"

    node.write_text(NODE_YAML.replace("zone: a", "zone: b"))
    ssa = await run("apply", "--server-side", "-f", str(node))
    assert ssa.code == 0, ssa.err
    applied = kubesim.get("cilium.io/v2", "CiliumNode", "node-a")
    assert applied is not None and applied["metadata"]["labels"] == {"zone": "b"}

    deleted = await run("delete", "-f", str(node), "-f", str(svc))
    assert deleted.code == 0, deleted.err
    assert kubesim.get("cilium.io/v2", "CiliumNode", "node-a") is None
    assert kubesim.get("v1", "Service", "web", "default") is None


async def test_get_watch(kubesim: KubeSim, kubectl: Kubectl) -> None:
    run = kubectl
    kubesim.apply({"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": "old"}})
    watching = asyncio.create_task(run("get", "cn", "--watch", "--request-timeout=2s"))
    await kubesim.wait_for_watch("cilium.io/v2", "CiliumNode")
    kubesim.apply({"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": "new"}})
    kubesim.delete("cilium.io/v2", "CiliumNode", "old")
    result = await watching
    rows = [line.split()[0] for line in result.out.strip().splitlines()]
    assert rows == ["NAME", "old", "new", "old"], result.out + result.err
