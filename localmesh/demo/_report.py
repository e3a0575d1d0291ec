"""What the demo prints: per cluster, the keys it exports and the keys it caches per remote."""

from __future__ import annotations

import asyncio
import copy
import time
from collections import Counter

from localmesh.demo._mesh import DemoCluster, SimulatedMesh
from localmesh.testing.synthetic import cilium_endpoint

KINDS = ("nodes", "identities", "ip", "services", "serviceexports")


def _kind(key: str) -> str:
    parts = key.split("/")
    return parts[2] if len(parts) > 2 else key


async def cluster_summary(cluster: DemoCluster, peers: list[str]) -> list[str]:
    exported = Counter(_kind(k) for k in await cluster.keys("cilium/state/"))
    cached = await cluster.keys("cilium/cache/")
    lines = [f"{cluster.info.name} (id {cluster.info.id}, etcd {cluster.etcd.endpoint})",
             "  exports  " + "  ".join(f"{kind}={exported.get(kind, 0)}" for kind in KINDS)]
    for peer in peers:
        per_kind = Counter(_kind(k) for k in cached if f"/{peer}/" in k)
        lines.append(f"  caches {peer}: " + "  ".join(f"{kind}={per_kind.get(kind, 0)}" for kind in KINDS))
    return lines


async def sample_keys(cluster: DemoCluster, width: int = 160) -> list[str]:
    """One exported key of each kind with its value, as a Cilium agent reads it."""
    lines = [f"sample of what {cluster.info.name} exports:"]
    everything = await cluster.keys("cilium/")
    seen: set[str] = set()
    for key, value in everything.items():
        kind = "cluster-config" if key.startswith("cilium/cluster-config/") else _kind(key)
        if kind in seen or not (key.startswith("cilium/state/") or kind == "cluster-config"):
            continue
        seen.add(kind)
        text = value.decode(errors="replace")
        lines.append(f"  {key}")
        lines.append(f"    {text if len(text) <= width else text[:width] + '...'}")
    return lines


async def mesh_summary(mesh: SimulatedMesh) -> str:
    names = [c.info.name for c in mesh.clusters]
    out: list[str] = await sample_keys(mesh.clusters[0])
    out.append("")
    for cluster in mesh.clusters:
        out.extend(await cluster_summary(cluster, [n for n in names if n != cluster.info.name]))
    return "\n".join(out)


async def consistency_errors(mesh: SimulatedMesh) -> list[str]:
    """Every cluster's cache must equal every peer's exported state, byte for byte."""
    errors: list[str] = []
    for cluster in mesh.clusters:
        cached = await cluster.keys("cilium/cache/")
        for peer in mesh.clusters:
            if peer is cluster:
                continue
            name = peer.info.name
            exported = await peer.keys("cilium/state/")
            expected: dict[str, bytes] = {}
            for key, value in exported.items():
                kind = _kind(key)
                rest = key.split("/", 4)[4]  # after cilium/state/<kind>/v1/
                if kind == "identities":
                    expected[f"cilium/cache/identities/v1/{name}/{rest}"] = value
                elif kind == "ip":
                    expected[f"cilium/cache/ip/v1/{name}/{rest.removeprefix('default/')}"] = value
                else:
                    expected[f"cilium/cache/{kind}/v1/{rest}"] = value
            mine = {k: v for k, v in cached.items()
                    if k.split("/")[4:5] == [name] or (k.split("/")[2] in ("identities", "ip")
                                                       and k.split("/")[4] == name)}
            if mine != expected:
                missing = len(set(expected) - set(mine))
                stale = len(set(mine) - set(expected))
                errors.append(f"{cluster.info.name} cache of {name}: {missing} missing, {stale} stale, "
                              f"{sum(1 for k in expected if k in mine and mine[k] != expected[k])} differ")
    return errors


async def propagation_latency(mesh: SimulatedMesh, source: DemoCluster, target: DemoCluster,
                              round_no: int) -> float:
    """Move one endpoint of ``source`` to a new IP; seconds until ``target``'s cache shows it."""
    cep = copy.deepcopy(cilium_endpoint(source.shape, 0))
    new_ip = f"10.{source.shape.cluster_index}.255.{round_no % 250 + 1}"
    cep["status"]["networking"]["addressing"][0]["ipv4"] = new_ip
    key = f"cilium/cache/ip/v1/{source.info.name}/{new_ip}"
    started = time.monotonic()
    source.sim.apply(cep)
    assert target.client is not None
    while not await target.client.get(key):
        if time.monotonic() - started > 30:
            raise TimeoutError(f"{key} did not reach {target.info.name}")
        await asyncio.sleep(0.005)
    return time.monotonic() - started
