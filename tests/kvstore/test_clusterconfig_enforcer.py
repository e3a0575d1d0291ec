"""ClusterConfigEnforcer on MemoryKV: update-if-different, periodic re-check, immediate restore."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from apiserver.kvstore.config_enforcer import ClusterConfigEnforcer
from apiserver.kvstore.leases import LeaseManager
from localmesh.memory.kv import MemoryKV

Eventually = Callable[..., Awaitable[None]]
KEY = "cilium/cluster-config/cluster3"
VALUE = b'{"id":3,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255,"serviceExportsEnabled":false}}'


async def test_write_once_updates_only_if_different(kv: MemoryKV, leases: LeaseManager) -> None:
    enforcer = ClusterConfigEnforcer(kv, leases, "cluster3", VALUE)
    assert await enforcer.write_once()
    entry = kv.entry(KEY)
    assert entry is not None and entry.value == VALUE and entry.lease == leases.lease_of(KEY) != 0
    assert not await enforcer.write_once()
    assert kv.ops["put"] == 1


@pytest.mark.parametrize(("value", "own_lease"), [
    pytest.param(VALUE, False, id="same-bytes-on-a-previous-process-lease"),
    pytest.param(b'{"id":4}', True, id="other-bytes"),
])
async def test_write_once_rewrites(kv: MemoryKV, leases: LeaseManager, value: bytes, own_lease: bool) -> None:
    enforcer = ClusterConfigEnforcer(kv, leases, "cluster3", VALUE)
    await enforcer.write_once()
    foreign = await kv.grant_lease(60)
    await kv.put(KEY, value, lease=leases.lease_of(KEY) if own_lease else foreign)
    assert await enforcer.write_once()
    entry = kv.entry(KEY)
    assert entry is not None and entry.value == VALUE and entry.lease == leases.lease_of(KEY)


async def test_external_changes_are_reverted_at_once(kv: MemoryKV, leases: LeaseManager,
                                                     eventually: Eventually) -> None:
    enforcer = ClusterConfigEnforcer(kv, leases, "cluster3", VALUE, interval=3600)
    await enforcer.write_once()
    enforcer.start()
    try:
        await kv.put("cilium/cluster-config/cluster30", b"other cluster")  # not our key: ignored
        await kv.put(KEY, b"tampered")
        await eventually(lambda: kv.snapshot().get(KEY) == VALUE)
        await kv.delete(KEY)
        await eventually(lambda: kv.snapshot().get(KEY) == VALUE)
        kv.expire_lease(leases.lease_of(KEY))
        await eventually(lambda: kv.snapshot().get(KEY) == VALUE)
        assert enforcer.writes == 4
        assert kv.snapshot()["cilium/cluster-config/cluster30"] == b"other cluster"
    finally:
        await enforcer.stop()


async def test_periodic_enforcement_retries_failures(kv: MemoryKV, leases: LeaseManager,
                                                     eventually: Eventually) -> None:
    enforcer = ClusterConfigEnforcer(kv, leases, "cluster3", VALUE, interval=0.02)
    kv.fail_next(1, ops={"get"})
    enforcer.start()
    try:
        await eventually(lambda: kv.ops["get"] >= 4)  # failed, then written, then re-checked
    finally:
        await enforcer.stop()
    assert enforcer.failures == 1 and enforcer.writes == 1
    assert kv.snapshot() == {KEY: VALUE}


async def test_compaction_of_the_watch_triggers_a_recheck(kv: MemoryKV, leases: LeaseManager,
                                                          eventually: Eventually) -> None:
    # Neither the period nor the retry back-off can restore the key within the test: only the
    # watcher can, and its resume point has been compacted away.
    enforcer = ClusterConfigEnforcer(kv, leases, "cluster3", VALUE, interval=3600, retry_min=3600)
    await enforcer.write_once()
    await kv.put(KEY, b"tampered before the watch started")
    await kv.put("unrelated", b"x")
    kv.compact(kv.revision)
    kv.fail_next(1, ops={"get"})  # the enforcer's own first check fails
    enforcer.start()
    try:
        await eventually(lambda: kv.snapshot().get(KEY) == VALUE, timeout=5)
    finally:
        await enforcer.stop()
    assert enforcer.failures == 1
