"""The write side against a real etcd: canary after data, a lease revoked behind our back, stale
keys of a previous run, 5,000 keys byte-exact, heartbeat and cluster config on the wire.

All tests share one session etcd; each works under its own prefix and cluster name.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from apiserver.kvstore.config_enforcer import ClusterConfigEnforcer
from apiserver.kvstore.etcd import EtcdClient
from apiserver.kvstore.heartbeat import Heartbeat
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.syncstore import SyncStore

Eventually = Callable[..., Awaitable[None]]


@pytest.fixture
def client(etcd_client: EtcdClient) -> EtcdClient:
    return etcd_client


@pytest.fixture
def names(etcd_prefix: str) -> tuple[str, str]:
    """(store prefix, cluster name), unique to the test."""
    return f"{etcd_prefix}state/nodes/v1", f"c-{uuid.uuid4().hex[:8]}"


class Run:
    """One "process": a lease manager and its sync stores, stopped (never revoked) at the end."""

    def __init__(self, client: EtcdClient) -> None:
        self.leases = LeaseManager(client, ttl=60, keepalive_interval=0.2)
        self.client = client
        self.stores: list[SyncStore] = []

    async def store(self, **options: Any) -> SyncStore:
        store = SyncStore(self.client, self.leases, **options)
        await store.start()
        self.stores.append(store)
        return store

    async def stop(self) -> None:
        for store in self.stores:
            await store.stop()
        await self.leases.stop()


@pytest.fixture
async def runs(client: EtcdClient) -> AsyncIterator[Callable[[], Run]]:
    started: list[Run] = []

    def new_run() -> Run:
        run = Run(client)
        run.leases.start()
        started.append(run)
        return run

    yield new_run
    for run in started:
        await run.stop()
        await run.leases.stop(revoke=True)  # tidy the shared etcd


async def dump(client: EtcdClient, prefix: str) -> dict[str, bytes]:
    kvs, _ = await client.list_prefix(prefix + "/")
    return {kv.key: kv.value for kv in kvs}


async def test_canary_is_written_after_the_data(client: EtcdClient, runs: Callable[[], Run],
                                                names: tuple[str, str]) -> None:
    prefix, cluster = names
    store = await runs().store(prefix=prefix, cluster_name=cluster)
    for i in range(1000):
        store.upsert(f"{cluster}/node-{i:04d}", b"v%d" % i)
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 30)
    kvs, _ = await client.list_prefix(prefix + "/")
    canary = await client.get(f"cilium/synced/{cluster}/{prefix}")
    assert len(kvs) == 1000 and all(kv.lease for kv in kvs)
    assert canary is not None and canary.lease
    assert canary.mod_revision > max(kv.mod_revision for kv in kvs)


async def test_keys_come_back_after_their_lease_is_revoked_externally(
        client: EtcdClient, runs: Callable[[], Run], names: tuple[str, str], eventually: Eventually) -> None:
    prefix, cluster = names
    store = await runs().store(prefix=prefix, cluster_name=cluster)
    for i in range(50):
        store.upsert(f"n{i}", b"v")
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 30)
    canary = f"cilium/synced/{cluster}/{prefix}"
    lease = (await client.get(canary)).lease  # type: ignore[union-attr]
    await client.revoke_lease(lease)  # as an operator or an etcd restart would
    assert await dump(client, prefix) == {}
    await eventually(lambda: _count(client, prefix, 50), timeout=20, what="keys re-written")
    # The canary comes back after the keys it vouches for.
    await eventually(lambda: _exists(client, canary), timeout=20, what="canary re-written")
    restored = await client.get(canary)
    assert restored is not None and restored.lease not in (0, lease)
    kvs, _ = await client.list_prefix(prefix + "/")
    assert restored.mod_revision > max(kv.mod_revision for kv in kvs)


async def _exists(client: EtcdClient, key: str) -> bool:
    return await client.get(key) is not None


async def _count(client: EtcdClient, prefix: str, expected: int) -> bool:
    return len(await dump(client, prefix)) == expected


async def test_stale_keys_of_a_previous_run_are_deleted(client: EtcdClient, runs: Callable[[], Run],
                                                        names: tuple[str, str], eventually: Eventually) -> None:
    prefix, cluster = names
    stale_prefix = f"{prefix}/{cluster}/"
    first = runs()
    old = await first.store(prefix=prefix, cluster_name=cluster, stale_prefix=stale_prefix)
    for name in ("gone", "kept", "changed"):
        old.upsert(f"{cluster}/{name}", b"old")
    old.mark_synced()
    await asyncio.wait_for(old.synced.wait(), 30)
    await first.stop()  # a restart: the keys stay, on the old process's lease
    await client.put(f"{prefix}/other-cluster/x", b"not ours to clean")

    new = await runs().store(prefix=prefix, cluster_name=cluster, stale_prefix=stale_prefix)
    new.upsert(f"{cluster}/kept", b"old")
    new.upsert(f"{cluster}/changed", b"new")
    new.upsert(f"{cluster}/added", b"new")
    new.mark_synced()
    await asyncio.wait_for(new.synced.wait(), 30)
    expected = {f"{prefix}/{cluster}/kept": b"old", f"{prefix}/{cluster}/changed": b"new",
                f"{prefix}/{cluster}/added": b"new", f"{prefix}/other-cluster/x": b"not ours to clean"}
    await eventually(lambda: _equals(client, prefix, expected), timeout=20, what="stale keys deleted")
    await client.delete(f"{prefix}/other-cluster/x")


async def _equals(client: EtcdClient, prefix: str, expected: dict[str, bytes]) -> bool:
    return await dump(client, prefix) == expected


async def test_five_thousand_keys_byte_exact_then_updates_and_deletes(
        client: EtcdClient, runs: Callable[[], Run], names: tuple[str, str], eventually: Eventually) -> None:
    prefix, cluster = names
    store = await runs().store(prefix=prefix, cluster_name=cluster)
    values = {f"{cluster}/n{i:05d}": b'{"Name":"n%d","Data":"\\u003c\xc3\xa9\x00"}' % i for i in range(5000)}
    for key, value in values.items():
        store.upsert(key, value)
    store.mark_synced()
    await asyncio.wait_for(store.synced.wait(), 60)
    assert await dump(client, prefix) == {f"{prefix}/{k}": v for k, v in values.items()}
    for i, key in enumerate(list(values)):
        if i % 2:
            store.delete(key)
            del values[key]
        elif i % 4 == 0:
            values[key] = b"updated %d" % i
            store.upsert(key, values[key])
    expected = {f"{prefix}/{k}": v for k, v in values.items()}
    await eventually(lambda: _equals(client, prefix, expected), timeout=30, what="updates applied")
    assert dict(store.exported()) == values


async def test_heartbeat_and_cluster_config_on_etcd(client: EtcdClient, eventually: Eventually) -> None:
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    leases = LeaseManager(client, ttl=60)
    leases.start()
    enforcer = ClusterConfigEnforcer(client, leases, cluster, b'{"id":7}')
    heartbeat = Heartbeat(client, leases, interval=0.05)
    try:
        assert await enforcer.write_once()
        enforcer.start()
        heartbeat.start()
        await eventually(lambda: heartbeat.writes >= 2)
        key = f"cilium/cluster-config/{cluster}"
        await client.put(key, b'{"id":8}')
        await eventually(lambda: _value_is(client, key, b'{"id":7}'), timeout=10, what="config restored")
    finally:
        await heartbeat.stop()
        await enforcer.stop()
        await leases.stop(revoke=True)


async def _value_is(client: EtcdClient, key: str, value: bytes) -> bool:
    entry = await client.get(key)
    return entry is not None and entry.value == value
