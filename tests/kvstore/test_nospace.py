"""etcd out of space: the NOSPACE alarm read from the status poll (said once per episode, a gauge,
a callback when it is gone), refused writes (``NoSpaceError`` from real etcd, counted, not logged
per write, retried at once when space is back)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import pytest

from apiserver.kvstore import NoSpaceError, Status
from apiserver.kvstore.etcd import EtcdClient
from apiserver.kvstore.leases import LeaseManager
from apiserver.kvstore.nospace import SpaceAlarm
from apiserver.kvstore.store_reset import StoreResetMonitor
from apiserver.kvstore.syncstore import SyncStore
from apiserver.metrics import Metrics
from localmesh.memory.kv import MemoryKV
from localmesh.testing.etcd import EtcdServer

Eventually = Callable[..., Awaitable[None]]
ALARM = "memberID:10400516043552783825 alarm:NOSPACE "


def status(*errors: str) -> Status:
    return Status(cluster_id=1, member_id=2, version="3.4.23", db_size=4 << 20, leader=2, raft_term=2,
                  revision=10, errors=errors)


def gauge(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("cilium_clustermesh_apiserver_kvstore_nospace_alarm")


def test_an_episode_is_said_once_with_a_gauge_and_ends_with_the_callback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    metrics, cleared = Metrics(), []
    alarm = SpaceAlarm(lambda: cleared.append(1), metrics=metrics)
    alarm.observe(status())
    assert not alarm.active and gauge(metrics) == 0
    for _ in range(5):  # every status poll of the episode
        alarm.observe(status("etcdserver: no leader", ALARM))
    assert alarm.active and gauge(metrics) == 1 and cleared == []
    alarm.observe(status())
    alarm.observe(status())
    assert not alarm.active and gauge(metrics) == 0 and cleared == [1]
    alarm.observe(status(ALARM))  # a second episode
    messages = [r.getMessage() for r in caplog.records if "NOSPACE" in r.getMessage()]
    assert [m.split(":")[0] for m in messages] == [
        "etcd is out of space (NOSPACE alarm)", "etcd NOSPACE alarm cleared; retrying every refused write",
        "etcd is out of space (NOSPACE alarm)"]
    assert alarm.episodes == 2


async def test_the_status_poll_tells_the_alarm(kv: MemoryKV) -> None:
    async def on_reset(reason: str) -> None:
        raise AssertionError(reason)

    alarm = SpaceAlarm()
    monitor = StoreResetMonitor(kv, on_reset, space=alarm)
    await monitor.check_once()
    assert not alarm.active
    kv.status_errors.append(ALARM)
    await monitor.check_once()
    assert alarm.active
    kv.status_errors.clear()
    await monitor.check_once()
    assert not alarm.active


@pytest.mark.parametrize("reported", [pytest.param(True, id="alarm-reported-by-owner"),
                                      pytest.param(False, id="no-alarm-watcher")])
async def test_writes_refused_for_space_are_counted_quietly_and_retried_at_once(
        kv: MemoryKV, leases: LeaseManager, eventually: Eventually, caplog: pytest.LogCaptureFixture,
        reported: bool) -> None:
    metrics = Metrics()
    # Reported by a SpaceAlarm (the exporter's), or else by the store.
    store = SyncStore(kv, leases, prefix="cilium/state/nodes/v1", cluster_name="c1", metrics=metrics,
                      nospace_reported=reported)
    await store.start()
    try:
        store.upsert("c1/warm-up", b"1")  # a lease exists: the failures below are the Txns'
        await eventually(lambda: store.pending_writes == 0)
        failures = 6
        kv.fail_next(failures, NoSpaceError("etcd is out of space: mvcc: database space exceeded"), ops={"apply"})
        store.upsert("c1/a", b"A")
        store.upsert("c1/b", b"B")

        def refused() -> float:
            value = metrics.registry.get_sample_value(
                "cilium_clustermesh_apiserver_kvstore_writes_refused_nospace_total", {"scope": store.scope})
            return 0.0 if value is None else value

        # Both keys went in each refused Txn; after the last one they wait 5 ms x 2^5 = 160 ms.
        await eventually(lambda: refused() == 2 * failures and store.retrying == 2, what="every refusal")
        store.retry_now()
        assert store.retrying == 0 and store.pending_writes == 2
        await eventually(lambda: kv.snapshot("cilium/state/nodes/v1/c1/") == {
            "cilium/state/nodes/v1/c1/warm-up": b"1", "cilium/state/nodes/v1/c1/a": b"A",
            "cilium/state/nodes/v1/c1/b": b"B"})
        warned = [r for r in caplog.records if r.levelname == "WARNING" and "Failed writing" in r.getMessage()]
        assert len(warned) == (0 if reported else failures)
    finally:
        await store.stop()


async def test_real_etcd_out_of_space_refuses_puts_and_lists_the_alarm() -> None:
    async with EtcdServer(name="nospace", extra_args=["--quota-backend-bytes", str(2 << 20)]) as server:
        client = await EtcdClient.connect(server.etcd_config(), timeout=10)
        try:
            with pytest.raises(NoSpaceError, match="database space exceeded"):
                for i in range(1000):
                    await client.put(f"junk/{i % 10}", b"x" * 100_000)
            alarm = SpaceAlarm()
            alarm.observe(await client.status())
            assert alarm.active
            assert await client.delete("junk/1") == 1  # deletes still work
        finally:
            await client.close()
