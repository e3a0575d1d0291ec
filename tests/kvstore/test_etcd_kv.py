"""EtcdClient KV and lease operations against a real etcd (the session-shared one, own key prefix)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from apiserver.kvstore import (
    MAX_TXN_OPS,
    Compare,
    Delete,
    KVBackend,
    KVStoreError,
    LeaseNotFoundError,
    Put,
)
from apiserver.kvstore.etcd import EtcdClient
from apiserver.kvstore.etcd.client import PAGE_GROWTH_MAX
from localmesh.testing.etcd import EtcdServer


def test_implements_the_seam(etcd_client: EtcdClient) -> None:
    backend: KVBackend = etcd_client  # mypy checks the protocol; this checks the methods exist
    assert callable(backend.watch)


async def test_crud(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    key = f"{etcd_prefix}node"
    assert await etcd_client.get(key) is None
    rev1 = await etcd_client.put(key, b"\x00binary\xff")
    kv = await etcd_client.get(key)
    assert kv is not None
    assert (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.lease) == (key, b"\x00binary\xff", rev1, rev1, 0)
    rev2 = await etcd_client.put(key, b"v2")
    assert rev2 > rev1
    kv = await etcd_client.get(key)
    assert kv is not None and (kv.value, kv.create_revision, kv.mod_revision) == (b"v2", rev1, rev2)
    assert await etcd_client.delete(key) == 1
    assert await etcd_client.delete(key) == 0
    assert await etcd_client.get(key) is None


async def test_list_prefix_is_string_prefix_sorted_and_paged(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    keys = [f"{etcd_prefix}a/{i:03d}" for i in range(25)]
    await etcd_client.apply([Put(k, k.encode()) for k in reversed(keys)])
    await etcd_client.put(f"{etcd_prefix}a0", b"outside")  # a/ is a string prefix: a0 is not in it
    whole, rev = await etcd_client.list_prefix(f"{etcd_prefix}a/")
    paged, paged_rev = await etcd_client.list_prefix(f"{etcd_prefix}a/", page_size=7)
    assert [kv.key for kv in whole] == keys == [kv.key for kv in paged]
    assert paged_rev == rev
    keys_only, _ = await etcd_client.list_prefix(f"{etcd_prefix}a/", keys_only=True)
    assert {kv.value for kv in keys_only} == {b""}


async def test_list_prefix_pages_grow(etcd_client: EtcdClient, etcd_prefix: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # etcd 3.4 counts the whole rest of the range on every limited request: fixed small pages would
    # make big listings quadratic, so each page doubles, up to PAGE_GROWTH_MAX times the first.
    keys = [f"{etcd_prefix}{i:04d}" for i in range(600)]
    await etcd_client.apply([Put(k, b"v") for k in keys])
    limits: list[int] = []
    unary = etcd_client._unary

    async def spy(method: str, request: Any, *, idempotent: bool) -> Any:
        if method == "KV.Range":
            limits.append(request.limit)
        return await unary(method, request, idempotent=idempotent)

    monkeypatch.setattr(etcd_client, "_unary", spy)
    kvs, _ = await etcd_client.list_prefix(etcd_prefix, page_size=2)
    assert [kv.key for kv in kvs] == keys
    assert limits == [2, 4, 8, 16, 32, 64, 128, 128, 128, 128]
    assert max(limits) == 2 * PAGE_GROWTH_MAX


async def test_iter_prefix_yields_the_listing_page_by_page(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    keys = [f"{etcd_prefix}{i:03d}" for i in range(40)]
    await etcd_client.apply([Put(k, k.encode()) for k in keys])
    rev = (await etcd_client.status()).revision
    pages = [page async for page in etcd_client.iter_prefix(etcd_prefix, page_size=5, keys_only=True)]
    assert [len(p) for p, _ in pages] == [5, 10, 20, 5]
    assert [kv.key for p, _ in pages for kv in p] == keys
    assert {kv.value for p, _ in pages for kv in p} == {b""}
    assert {at for _, at in pages} == {rev}


async def test_list_prefix_at_a_past_revision(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    rev = await etcd_client.apply([Put(f"{etcd_prefix}{i}", b"old") for i in range(5)])
    await etcd_client.apply([Put(f"{etcd_prefix}{i}", b"new") for i in range(1, 5)] + [Delete(f"{etcd_prefix}0")])
    kvs, at = await etcd_client.list_prefix(etcd_prefix, revision=rev, page_size=2)
    assert at == rev
    assert [(kv.key, kv.value) for kv in kvs] == [(f"{etcd_prefix}{i}", b"old") for i in range(5)]


async def test_delete_prefix(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    await etcd_client.apply([Put(f"{etcd_prefix}d/{i}", b"x") for i in range(4)] + [Put(f"{etcd_prefix}e", b"y")])
    assert await etcd_client.delete_prefix(f"{etcd_prefix}d/") == 4
    kvs, _ = await etcd_client.list_prefix(etcd_prefix)
    assert [kv.key for kv in kvs] == [f"{etcd_prefix}e"]


async def test_txn_with_compares(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    key, other = f"{etcd_prefix}k", f"{etcd_prefix}other"
    # create-if-absent: create_revision == 0 holds only for a missing key
    assert await etcd_client.txn([Compare(key, "create", "=", 0)], [Put(key, b"first")]) is True
    assert await etcd_client.txn([Compare(key, "create", "=", 0)], [Put(key, b"second")],
                                 [Put(other, b"fallback")]) is False
    kv = await etcd_client.get(key)
    assert kv is not None and kv.value == b"first"
    assert (await etcd_client.get(other)) is not None
    assert await etcd_client.txn([Compare(key, "mod", "=", kv.mod_revision), Compare(key, "value", "=", b"first")],
                                 [Delete(key)]) is True
    assert await etcd_client.get(key) is None
    with pytest.raises(KVStoreError, match="duplicate key"):
        await etcd_client.txn([], [Put(other, b"1"), Put(other, b"2")])


async def test_apply_300_ops_in_txns_of_128(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    before = await etcd_client.apply([])
    ops = [Put(f"{etcd_prefix}{i:03d}", f"v{i}".encode()) for i in range(300)]
    last = await etcd_client.apply(ops)
    kvs, _ = await etcd_client.list_prefix(etcd_prefix)
    assert [(kv.key, kv.value) for kv in kvs] == [(op.key, op.value) for op in ops]
    # one revision per Txn: ceil(300 / 128) = 3 (other tests may write to the shared etcd in between)
    revisions = sorted({kv.mod_revision for kv in kvs})
    assert len(revisions) == -(-300 // MAX_TXN_OPS) and revisions[-1] == last and last > before
    assert [kv.mod_revision for kv in kvs[:MAX_TXN_OPS]] == [revisions[0]] * MAX_TXN_OPS
    deleted = await etcd_client.apply([Delete(op.key) for op in ops[::2]] + [Delete(f"{etcd_prefix}none")])
    assert deleted > last
    kvs, _ = await etcd_client.list_prefix(etcd_prefix)
    assert len(kvs) == 150


async def test_leases(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    lease = await etcd_client.grant_lease(30.2)
    assert await etcd_client.lease_time_to_live(lease) > 29
    assert await etcd_client.keepalive(lease) == 31.0  # whole seconds, rounded up
    await etcd_client.put(f"{etcd_prefix}leased", b"v", lease=lease)
    kv = await etcd_client.get(f"{etcd_prefix}leased")
    assert kv is not None and kv.lease == lease
    await etcd_client.revoke_lease(lease)
    assert await etcd_client.get(f"{etcd_prefix}leased") is None  # revoking deletes the keys
    with pytest.raises(LeaseNotFoundError):
        await etcd_client.keepalive(lease)
    with pytest.raises(LeaseNotFoundError):
        await etcd_client.put(f"{etcd_prefix}leased", b"v", lease=lease)
    with pytest.raises(LeaseNotFoundError):
        await etcd_client.revoke_lease(lease)
    with pytest.raises(LeaseNotFoundError):
        await etcd_client.apply([Put(f"{etcd_prefix}x", b"v", lease=lease)])


async def test_lease_expiry_deletes_keys_and_fails_puts(
        etcd_client: EtcdClient, etcd_prefix: str, eventually: Callable[..., Awaitable[None]]) -> None:
    lease = await etcd_client.grant_lease(1)
    await etcd_client.put(f"{etcd_prefix}short", b"v", lease=lease)

    async def gone() -> bool:
        return await etcd_client.get(f"{etcd_prefix}short") is None

    await eventually(gone, timeout=10, what="lease expiry")
    with pytest.raises(LeaseNotFoundError):
        await etcd_client.put(f"{etcd_prefix}short", b"v", lease=lease)
    with pytest.raises(LeaseNotFoundError):
        await etcd_client.lease_time_to_live(lease)


async def test_status_and_members(etcd_client: EtcdClient, etcd_shared: EtcdServer) -> None:
    status = await etcd_client.status()
    assert status.version.startswith("3.")
    assert status.cluster_id == etcd_client.cluster_id != 0
    assert status.leader == status.member_id
    members = await etcd_client.member_list()
    assert [(m[0], m[2]) for m in members] == [(status.member_id, [etcd_shared.endpoint])]


async def test_concurrent_puts(etcd_client: EtcdClient, etcd_prefix: str) -> None:
    await asyncio.gather(*(etcd_client.put(f"{etcd_prefix}{i:03d}", b"v") for i in range(200)))
    kvs, _ = await etcd_client.list_prefix(etcd_prefix, keys_only=True)
    assert len(kvs) == 200
