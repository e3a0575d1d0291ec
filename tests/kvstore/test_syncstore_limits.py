"""What etcd refuses, and what it lost, against a real etcd: a value beyond etcd's request limit
fails alone (named in the log, counted) and holds nothing else back; a batch too large for one
request is split; a store that lost its data gets every key back before its canary."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from apiserver.kvstore import MAX_REQUEST_BYTES
from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.syncstore import SyncStore
from apiserver.metrics import Metrics
from localmesh.testing.etcd import EtcdServer
from tests.kvstore.conftest import started

Eventually = Callable[..., Awaitable[None]]


@pytest.fixture
def client(etcd_client: EtcdClient) -> EtcdClient:
    return etcd_client


@pytest.fixture
async def leases(client: EtcdClient) -> AsyncIterator[LeaseManager]:
    async with started(LeaseManager(client, ttl=60, keepalive_interval=0.2), revoke=True) as manager:
        yield manager


async def dump(client: EtcdClient, prefix: str) -> dict[str, bytes]:
    kvs, _ = await client.list_prefix(prefix + "/")
    return {kv.key[len(prefix) + 1:]: kv.value for kv in kvs}


def counted(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(f"cilium_clustermesh_apiserver_{name}", labels) or 0.0


async def test_an_oversized_value_fails_alone_and_a_fix_is_written_at_once(
        client: EtcdClient, leases: LeaseManager, etcd_prefix: str, eventually: Eventually,
        caplog: pytest.LogCaptureFixture) -> None:
    prefix, cluster = f"{etcd_prefix}state/services/v1", f"c-{uuid.uuid4().hex[:8]}"
    metrics = Metrics()
    store = SyncStore(client, leases, prefix=prefix, cluster_name=cluster, metrics=metrics)
    await store.start()
    try:
        for i in range(20):
            store.upsert(f"svc-{i}", b'{"backends":{}}')
        await eventually(lambda: store.pending_writes == 0, timeout=30, what="first values written")
        huge = b"x" * (MAX_REQUEST_BYTES + 1)
        for i in range(20):
            store.upsert(f"svc-{i}", huge if i == 7 else b'{"backends":{"10.0.0.%d":{}}}' % i)
        store.mark_synced()
        await asyncio.wait_for(store.synced.wait(), 30)
        # Everything else is in etcd with its new value, and the canary is written.
        data = await dump(client, prefix)
        assert data.pop("svc-7") == b'{"backends":{}}'  # etcd keeps what it had
        assert data == {f"svc-{i}": b'{"backends":{"10.0.0.%d":{}}}' % i for i in range(20) if i != 7}
        assert await client.get(store.canary_key) is not None
        refused = [r._fields for r in caplog.records  # type: ignore[attr-defined]
                   if r.getMessage().startswith("Value too large")]
        assert len(refused) == 1
        assert refused[0]["key"] == f"{prefix}/svc-7" and refused[0]["size"] == len(huge)
        assert refused[0]["limit"] == MAX_REQUEST_BYTES
        scope = store.scope
        assert counted(metrics, "kvstore_values_too_large_total", scope=scope, source_cluster=cluster) == 1
        # The same value again is not retried; a fixed value is written at once.
        store.upsert("svc-7", huge)
        assert store.pending_writes == 0
        store.upsert("svc-7", b'{"backends":{"10.0.0.7":{}}}')
        await eventually(lambda: _value(client, f"{prefix}/svc-7", b'{"backends":{"10.0.0.7":{}}}'),
                         timeout=30, what="the fixed value in etcd")
    finally:
        await store.stop()


async def _present(client: EtcdClient, key: str) -> bool:
    return await client.get(key) is not None


async def _value(client: EtcdClient, key: str, expected: bytes) -> bool:
    kv = await client.get(key)
    return kv is not None and kv.value == expected


async def test_a_batch_beyond_the_request_limit_is_split(
        client: EtcdClient, leases: LeaseManager, etcd_prefix: str) -> None:
    # 128 values of 40 kB: 5 MB, more than etcd accepts in one request; each value alone is fine.
    prefix, cluster = f"{etcd_prefix}state/services/v1", f"c-{uuid.uuid4().hex[:8]}"
    store = SyncStore(client, leases, prefix=prefix, cluster_name=cluster)
    await store.start()
    try:
        values = {f"svc-{i:03d}": bytes([65 + i % 26]) * 40_000 for i in range(128)}
        store.upsert_many(values)
        store.mark_synced()
        await asyncio.wait_for(store.synced.wait(), 60)
        assert await dump(client, prefix) == values
        assert store.batches > 1
    finally:
        await store.stop()


async def test_a_store_that_lost_its_data_gets_every_key_before_its_canary(
        etcd_server: EtcdServer, eventually: Eventually) -> None:
    client = await EtcdClient.connect(EtcdConfig(endpoints=(etcd_server.endpoint,)))
    leases = LeaseManager(client, ttl=60)
    leases.start()
    store = SyncStore(client, leases, prefix="cilium/state/ip/v1/default", cluster_name="c1")
    await store.start()
    try:
        store.upsert_many({f"10.0.{i // 250}.{i % 250}": b"v%d" % i for i in range(3000)})
        store.mark_synced()
        await asyncio.wait_for(store.synced.wait(), 30)
        await etcd_server.restart(wipe=True)  # the emptyDir model: same member, no data
        leases.reset()
        store.store_lost()
        assert not store.synced.is_set()
        # Poll the canary: when it is back, every key must be back too.
        await eventually(lambda: _present(client, store.canary_key), timeout=30, what="canary back")
        assert len(await dump(client, "cilium/state/ip/v1/default")) == 3000
        await asyncio.wait_for(store.synced.wait(), 30)
    finally:
        await store.stop()
        await leases.stop()
        await client.close()
