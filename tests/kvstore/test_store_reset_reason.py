"""The pure check of ``StoreResetMonitor``: which status changes mean a new, empty store."""

from __future__ import annotations

import pytest

from apiserver.kvstore import Status
from apiserver.kvstore.store_reset import reset_reason

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
