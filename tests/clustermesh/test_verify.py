"""``clustermesh-dbg verify`` as operators run it (a separate process, the exporter's flags): equal
after an export; every kind of drift found, counted and named per prefix; exit codes."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tests.clustermesh.conftest import Harness
from tests.clustermesh.test_exporter import seed


async def verify(h: Harness, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "clustermesh-dbg", "verify", "--cluster-name=cluster1",
        "--cluster-id=1", f"--kvstore-opt=etcd.address={h.etcd.endpoint}",
        f"--k8s-kubeconfig-path={h.kubeconfig}", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


def by_prefix(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["prefix"]: p for p in doc["prefixes"]}


async def test_equal_after_export_then_every_drift_is_reported(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    code, out = await verify(harness)
    assert code == 0, out
    assert out.startswith("cluster cluster1 (ID 1): Kubernetes vs etcd: equal")

    client = await harness.etcd_client()
    data = await harness.data()
    ip_keys = sorted(k for k in data if k.startswith("cilium/state/ip/v1/default/"))
    node_keys = sorted(k for k in data if k.startswith("cilium/state/nodes/v1/"))
    await harness.stop()  # nothing repairs the drift now
    await client.delete(ip_keys[0])
    await client.put(node_keys[0], b'{"changed":true}')
    await client.put("cilium/state/ip/v1/default/10.99.99.99", b"{}")
    await client.delete("cilium/synced/cluster1/cilium/state/nodes/v1")

    code, out = await verify(harness, "-o", "json")
    assert code == 1, out
    doc = json.loads(out)
    assert doc["equal"] is False
    prefixes = by_prefix(doc)
    ip = prefixes["cilium/state/ip/v1/default"]
    assert (ip["missing"], ip["stale"], ip["differing"]) == (1, 1, 0)
    assert ip["first_missing"] == [ip_keys[0]]
    assert ip["first_stale"] == ["cilium/state/ip/v1/default/10.99.99.99"]
    nodes = prefixes["cilium/state/nodes/v1/cluster1"]
    assert nodes["first_differing"] == [node_keys[0]] and nodes["missing"] == 0
    assert prefixes["cilium/state/services/v1/cluster1"]["equal"] is True
    assert doc["problems"] == ["sync canary cilium/synced/cluster1/cilium/state/nodes/v1 missing"]

    code, out = await verify(harness)
    assert code == 1
    assert f"    missing: {ip_keys[0]}" in out and "1 missing, 1 stale, 0 differing" in out


async def test_unreachable_etcd_is_an_error_not_a_verdict(harness: Harness) -> None:
    await harness.etcd.kill()
    code, out = await verify(harness, "--timeout=3")
    assert code == 2 and "cannot verify" in out
