"""SyncQueue, the pure bookkeeping of a sync store: coalescing, per-key ordering with several
batches in flight, back-off, the sync barrier, lease loss and stale leftovers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.kvstore._syncqueue import SyncQueue, retry_delay


@pytest.mark.parametrize(("failures", "delay"), [
    pytest.param(1, 0.005, id="first"),
    pytest.param(2, 0.01, id="second"),
    pytest.param(11, 5.12, id="eleventh"),
    pytest.param(30, 30.0, id="capped"),
    pytest.param(10_000, 30.0, id="no-overflow"),
])
def test_retry_delay(failures: int, delay: float) -> None:
    assert retry_delay(failures) == pytest.approx(delay)


def test_upserts_coalesce_and_deletes_of_unknown_keys_are_dropped() -> None:
    q = SyncQueue()
    assert q.upsert("a", b"1") and q.upsert("b", b"1") and q.upsert("a", b"2")
    assert not q.upsert("a", b"2")
    assert not q.delete("never")
    assert q.take(10) == (["a", "b"], [b"2", b"1"])


def test_upsert_many_is_upsert_of_each_pair() -> None:
    one, many = SyncQueue(), SyncQueue()
    pairs = [("a", b"1"), ("b", b"1"), ("a", b"2"), ("c", b"1"), ("b", b"1")]
    queued = [one.upsert(k, v) for k, v in pairs]
    assert many.upsert_many(pairs) == sum(queued) == 4
    assert many.take(10) == one.take(10) == (["a", "b", "c"], [b"2", b"1", b"1"])
    one.succeeded(["a", "b", "c"], [b"2", b"1", b"1"])
    many.succeeded(["a", "b", "c"], [b"2", b"1", b"1"])
    assert many.upsert_many([("a", b"2"), ("b", b"3")]) == 1 and many.take(10) == (["b"], [b"3"])


def test_a_taken_batch_mixing_every_case_is_filtered_per_key() -> None:
    q = SyncQueue()
    for key in ("in-flight", "unchanged", "deleted-unwritten"):
        q.upsert(key, b"1")
    first = q.take(1)  # "in-flight"
    q.succeeded(*q.take(1))  # "unchanged" written
    q.upsert("in-flight", b"2")
    q.upsert("unchanged", b"2")
    q.upsert("unchanged", b"1")  # back to what etcd holds: nothing to write
    q.delete("deleted-unwritten")
    q.upsert("new", b"1")
    assert q.take(10) == (["new"], [b"1"])
    assert q.blocked == ["in-flight"]
    q.succeeded(*first)
    assert q.take(10) == (["in-flight"], [b"2"])


def test_take_respects_the_limit_and_queue_order() -> None:
    q = SyncQueue()
    for i in range(5):
        q.upsert(f"k{i}", b"v")
    assert q.take(2)[0] == ["k0", "k1"]
    assert q.take(2)[0] == ["k2", "k3"]
    assert q.pending_writes == 5  # four in flight, one queued


def test_a_key_in_flight_is_never_taken_again_until_settled() -> None:
    q = SyncQueue()
    q.upsert("a", b"1")
    first = q.take(10)
    q.upsert("a", b"2")
    q.upsert("b", b"1")
    assert q.take(10) == (["b"], [b"1"])  # "a" waits for its first write
    assert q.blocked == ["a"]
    q.succeeded(*first)
    assert q.take(10) == (["a"], [b"2"])


def test_success_records_what_etcd_holds() -> None:
    q = SyncQueue()
    q.upsert("a", b"1")
    q.upsert("b", b"1")
    q.succeeded(*q.take(10))
    assert q.written == {"a": b"1", "b": b"1"} and q.pending_writes == 0
    q.delete("a")
    keys, values = q.take(10)
    assert (keys, values) == (["a"], [None])
    assert q.succeeded(keys, values) == (["a"], 0)
    assert q.written == {"b": b"1"}


def test_writes_that_change_nothing_are_settled_without_an_op() -> None:
    q = SyncQueue()
    q.upsert("a", b"1")
    q.succeeded(*q.take(10))
    q.upsert("a", b"2")
    q.upsert("a", b"1")  # back to what etcd holds
    q.upsert("tmp", b"1")
    q.delete("tmp")  # never written
    assert q.take(10) == ([], [])
    assert q.pending_writes == 0


def test_failure_backs_off_per_key_unless_a_newer_value_is_queued() -> None:
    q = SyncQueue()
    q.upsert("a", b"1")
    q.upsert("b", b"1")
    batch = q.take(10)
    q.upsert("b", b"2")  # arrives while the batch is in flight
    q.failed(*batch[:1], now=100.0)
    assert q.retry_due == {"a": pytest.approx(100.005)}
    assert q.uncertain == {"a", "b"}
    assert q.take(10) == (["b"], [b"2"])  # no waiting for the newer value
    q.promote(100.004)
    assert q.take(10) == ([], [])
    q.promote(100.005)
    keys, _ = q.take(10)
    assert keys == ["a"]
    q.failed(keys, now=200.0)
    assert q.retry_due["a"] == pytest.approx(200.01)  # doubled
    q.promote(200.01)
    q.succeeded(*q.take(10))
    assert q.failures == {"b": 1} and q.retry_due == {}


def test_uncertain_key_is_deleted_even_if_never_known_written() -> None:
    q = SyncQueue()
    q.upsert("a", b"1")
    batch = q.take(10)
    q.delete("a")
    q.failed(batch[0], now=0.0)  # the put may have landed
    assert q.take(10) == (["a"], [None])


def test_sync_barrier_covers_queued_in_flight_and_backed_off_keys() -> None:
    q = SyncQueue()
    for key in ("queued", "flying", "backing-off"):
        q.upsert(key, b"v")
    q.failed(q.take(1)[0], now=0.0)  # "queued" is taken first: it backs off
    flying = q.take(1)
    assert q.mark() == 3
    q.upsert("after", b"v")
    assert not q.sync_complete
    q.succeeded(*flying)
    q.succeeded(*q.take(10))
    assert not q.sync_complete  # "queued" is still backing off
    q.promote(1.0)
    q.succeeded(*q.take(10))
    assert q.sync_complete


def test_sync_barrier_waits_for_a_value_queued_while_the_older_one_was_in_flight() -> None:
    q = SyncQueue()
    q.upsert("a", b"1")
    first = q.take(10)
    q.upsert("a", b"2")
    q.mark()
    q.succeeded(*first)
    assert not q.sync_complete  # b"2" is not in etcd yet
    q.succeeded(*q.take(10))
    assert q.sync_complete


def test_lease_loss_requeues_wanted_keys_only() -> None:
    q = SyncQueue()
    q.upsert("a", b"1")
    q.upsert("b", b"1")
    q.succeeded(*q.take(10))
    q.delete("b")
    q.take(10)  # the delete of "b" is in flight
    assert q.lease_lost(["a", "b", "unknown"]) == 1
    assert "a" not in q.written and "b" not in q.written
    assert q.take(10) == (["a"], [b"1"])


def test_stale_leftovers_are_queued_for_deletion_and_counted() -> None:
    q = SyncQueue()
    q.upsert("mine", b"1")
    q.succeeded(*q.take(10))
    q.upsert("queued", b"1")
    assert q.queue_stale(["mine", "queued", "old1", "old2"]) == 2
    keys, values = q.take(10)
    assert sorted(zip(keys, values, strict=True)) == [("old1", None), ("old2", None), ("queued", b"1")]
    assert q.succeeded(keys, values)[1] == 2


_KEYS = st.sampled_from(["a", "b", "c"])
_OPS = st.lists(st.one_of(
    st.tuples(st.just("upsert"), _KEYS, st.sampled_from([b"1", b"2", b""])),
    st.tuples(st.just("delete"), _KEYS),
    st.tuples(st.just("take"), st.integers(1, 3)),
    st.tuples(st.just("succeed"), st.integers(0, 5)),
    st.tuples(st.just("fail"), st.integers(0, 5)),
    st.tuples(st.just("fail_applied"), st.integers(0, 5)),
    st.tuples(st.just("lose"), _KEYS),
), max_size=40)


@settings(max_examples=500, deadline=None)
@given(_OPS)
def test_what_the_queue_believes_etcd_holds_matches_a_model_of_etcd(ops: list[tuple[Any, ...]]) -> None:
    q, etcd = SyncQueue(), {}  # etcd: what a real etcd would hold
    batches: list[tuple[list[str], list[bytes | None]]] = []

    def apply(batch: tuple[list[str], list[bytes | None]]) -> None:
        for key, value in zip(*batch, strict=True):
            if value is None:
                etcd.pop(key, None)
            else:
                etcd[key] = value

    for op, *args in ops:
        if op == "upsert":
            q.upsert(args[0], args[1])
        elif op == "delete":
            q.delete(args[0])
        elif op == "take":
            batch = q.take(args[0])
            if batch[0]:
                batches.append(batch)
        elif op == "lose":
            if args[0] in etcd and args[0] not in q.inflight:
                del etcd[args[0]]
                q.lease_lost([args[0]])
        elif batches:
            batch = batches.pop(args[0] % len(batches))
            if op == "succeed":
                apply(batch)
                q.succeeded(*batch)
            elif op == "fail":
                q.failed(batch[0], 0.0)
            elif op == "fail_applied":  # a timeout after etcd applied it
                apply(batch)
                q.failed(batch[0], 0.0)
        # Where the queue is sure, it is right; where unsure, the key is marked uncertain.
        for key in "abc":
            if key not in q.uncertain and key not in q.inflight:
                assert q.written.get(key) == etcd.get(key), (key, dict(q.written), etcd)
    for batch in batches:  # settle what is in flight, then drain everything
        apply(batch)
        q.succeeded(*batch)
    q.retry_all_now()
    while q.order:
        batch = q.take(3)
        apply(batch)
        q.succeeded(*batch)
    assert dict(q.written) == etcd == q.state
    assert len(q.written) == len(etcd) and q.pending_writes == 0
