"""The README's main command end to end: the Cluster Mesh guide on two local clusters (root: the kubelet
makes network and mount namespaces), then nothing of it left behind."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the local clusters need root")


def links() -> set[str]:
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0].split("@")[0] for line in out.splitlines()}


@pytest.mark.parametrize("kvstoremesh", [pytest.param("true", id="kvstoremesh"),
                                         pytest.param("false", id="without-kvstoremesh")])
async def test_guide_demo_once(kvstoremesh: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "demo", "--once", "--clusters", "2", "--endpoints", "6",
        f"--kvstore-mesh={kvstoremesh}", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 280)
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    kubeconfig = re.search(r"kubeconfig (\S+)\)", text)
    assert kubeconfig is not None
    assert "✅ The 2 clusters can be meshed" in text
    assert "✅ Connected clusters cluster2, and cluster1!" in text
    expected = [" - cluster2: 1 configured, 1/1 connected"]
    if kvstoremesh == "true":
        expected += ["✅ All 1 KVStoreMesh replicas are connected to all clusters [min:1 / avg:1.0 / max:1]",
                     "   KVStoreMesh: 1/1 configured, 1/1 connected"]
    lines = text.splitlines()
    for line in ["✅ All 1 nodes are connected to all clusters [min:1 / avg:1.0 / max:1]",
                 f"\u2139\ufe0f KVStoreMesh is {'enabled' if kvstoremesh == 'true' else 'disabled'}",
                 "🔀 Global services: [ min:4 / avg:4.0 / max:4 ]", *expected]:
        assert line in lines, line
    view = text[text.index("━━ 5."):]
    assert re.search(r"ns-0/svc-0:\n  cluster1: 10\.1\.\S+:8080.*\n  cluster2: 10\.2\.\S+:8080", view), view
    assert "Removed everything." in text
    ours = set(re.findall(r"kubelet bridge (\S+),", text))
    assert len(ours) == 2
    assert not ours & links()  # this run's bridges are gone
