"""``StoreResetMonitor``: which status changes mean a new, empty store (a pure check), and a reset
that something else noticed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from apiserver.kvstore import Status
from apiserver.kvstore.store_reset import StoreResetMonitor, reset_reason
from localmesh.memory.kv import MemoryKV

Eventually = Callable[..., Awaitable[None]]

BEFORE = Status(cluster_id=0xC1, member_id=1, version="3.4.23", db_size=1, leader=1, raft_term=5,
                revision=1000)


def status(**changes: int) -> Status:
    fields = {"cluster_id": 0xC1, "member_id": 1, "version": "3.4.23", "db_size": 1, "leader": 1,
              "raft_term": 5, "revision": 1000}
    fields.update(changes)
    return Status(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(("now", "reason"), [
    pytest.param(status(), None, id="same"),
    pytest.param(status(revision=2000, raft_term=6), None, id="grown-and-new-leader"),
    pytest.param(status(revision=3), "revision went back from 1000 to 3", id="revision-back"),
    pytest.param(status(revision=5000, raft_term=2), "raft term went back from 5 to 2", id="term-back"),
    pytest.param(status(cluster_id=0xC2), "cluster ID changed from c1 to c2", id="other-cluster"),
])
def test_reset_reason(now: Status, reason: str | None) -> None:
    found = reset_reason(BEFORE, now)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


async def test_a_noticed_reset_is_handled_at_once_without_waiting_for_the_poll(
        kv: MemoryKV, eventually: Eventually) -> None:
    # A watch found that it cannot resume on this store (``StoreResetError``); the status itself
    # shows nothing (a new store that already reached the last revision polled).
    reasons: list[str] = []

    async def on_reset(reason: str) -> None:
        reasons.append(reason)

    monitor = StoreResetMonitor(kv, on_reset, interval=3600.0)
    assert await monitor.check_once() is None  # the baseline
    monitor.start()
    try:
        assert reasons == []
        monitor.notice("etcd store was reset: the watch on 'k/' resumes at revision 9")
        monitor.notice("a second watch says the same")
        await eventually(lambda: reasons != [])
        assert reasons == ["etcd store was reset: the watch on 'k/' resumes at revision 9"]
        assert monitor.resets == 1 and monitor.last_reason == reasons[0]
    finally:
        await monitor.stop()
