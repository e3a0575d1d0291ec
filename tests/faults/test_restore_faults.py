"""etcd changed behind the exporter's back, and etcd full, under a running exporter process.

- 100 IP keys deleted and 100 overwritten with garbage by a raw etcd client, plus a canary and the
  cluster config: the exporter writes its own back, with a log line naming each key and a count.
- etcd out of space (``--quota-backend-bytes``, filled by someone else): the NOSPACE alarm is
  logged once, shown by a gauge, /readyz is not ready; the changes Kubernetes made meanwhile are
  refused and counted; an operator frees space (delete, compact, defragment, disarm) and every
  refused write is retried: verify equal.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from apiserver.kvstore import NoSpaceError
from apiserver.paths import CLUSTER_CONFIG_PREFIX, IP_DEFAULT_PREFIX, SYNCED_PREFIX, cluster_config_key
from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer
from tests.faults.harness import CLUSTER, World, poll
from tests.faults.test_etcd_faults import exporting
from tests.faults.test_kube_faults import _churn

QUOTA = 8 << 20  # etcd's backend quota for the out-of-space scenario
JUNK = b"j" * 200_000


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"cilium_clustermesh_apiserver_{name}(?:{{(.*)}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


async def test_keys_deleted_or_overwritten_behind_our_back(world: World) -> None:
    exporter = await exporting(world)
    client = await world.etcd_client()
    try:
        kvs, _ = await client.list_prefix(IP_DEFAULT_PREFIX + "/")
        assert len(kvs) >= 200
        fault = time.monotonic()
        for kv in kvs[:100]:
            await client.delete(kv.key)
        for kv in kvs[100:200]:
            await client.put(kv.key, b"garbage")
        await client.delete(f"{SYNCED_PREFIX}/{CLUSTER.name}/cilium/state/ip/v1")
        await client.delete(cluster_config_key(CLUSTER.name))
    finally:
        await client.close()
    await world.converged("etcd: 100 keys deleted, 100 overwritten, a canary and the cluster config deleted",
                          exporter, since=fault)
    assert metric(await exporter.metrics(), "kvstore_keys_restored_total") == 201  # + the canary
    logs = exporter.logs()
    assert kvs[0].key in logs and kvs[150].key in logs  # named (the first 20 of a watch response)
    assert "Cluster configuration changed by someone else" in logs and CLUSTER_CONFIG_PREFIX in logs


@pytest.fixture
async def full_world(kubesim: KubeSim, tmp_path: Path) -> AsyncIterator[World]:
    async with EtcdServer(name="nospace", extra_args=["--quota-backend-bytes", str(QUOTA)]) as etcd:
        world = World(tmp_path, kubesim, etcd)
        try:
            yield world
        finally:
            await world.close()


async def _fill(world: World) -> int:
    """Someone else fills etcd until it refuses a put; how many junk values it took."""
    client = await world.etcd_client()
    try:
        for i in range(QUOTA // len(JUNK) * 4):
            try:
                await client.put(f"junk/{i}", JUNK)
            except NoSpaceError:
                return i
        raise AssertionError("etcd never ran out of space")
    finally:
        await client.close()


async def _free_space(world: World) -> None:
    """What an operator does (etcd's documented recovery): delete, compact, defragment, disarm."""
    await world.etcd.etcdctl_async("del", "--prefix", "junk/")
    client = await world.etcd_client()
    try:
        revision = (await client.status()).revision
    finally:
        await client.close()
    await world.etcd.etcdctl_async("compaction", str(revision))
    await world.etcd.etcdctl_async("defrag")
    await world.etcd.etcdctl_async("alarm", "disarm")


async def test_etcd_out_of_space_then_freed(full_world: World) -> None:
    world = full_world
    exporter = await exporting(world, "--kvstore-lease-ttl=60s")
    await _fill(world)
    await poll(exporter.not_ready, "not ready while etcd is out of space")
    _churn(world, 1000, 40)  # refused by etcd until space is back

    async def refused() -> bool:
        text = await exporter.metrics()
        return (metric(text, "kvstore_nospace_alarm") == 1
                and metric(text, "kvstore_writes_refused_nospace_total") >= 40)

    await poll(refused, "the alarm and the refused writes in the metrics")
    assert not await exporter.ready()
    report = await world.drift()
    assert not report.equal  # the churn is not in etcd
    freed = time.monotonic()
    await _free_space(world)
    await world.converged("etcd: out of space (NOSPACE), 40 endpoints churned meanwhile, freed",
                          exporter, since=freed)
    logs = exporter.logs()
    assert logs.count("etcd is out of space (NOSPACE alarm)") == 1, logs[-3000:]
    assert logs.count("etcd NOSPACE alarm cleared") == 1
    assert "Failed writing a batch" not in logs  # refused writes are not logged one by one
    assert metric(await exporter.metrics(), "kvstore_nospace_alarm") == 0
