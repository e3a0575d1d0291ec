"""LeaseManager on MemoryKV: TTL validation, keys per lease, keepalive, loss detection, revocation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from apiserver.kvstore import UnavailableError
from apiserver.kvstore.leases import LeaseManager, validate_lease_ttl
from localmesh.memory.kv import MemoryKV
from tests.kvstore.conftest import started

Eventually = Callable[..., Awaitable[None]]


@pytest.fixture
async def running(kv: MemoryKV) -> AsyncIterator[LeaseManager]:
    async with started(LeaseManager(kv, ttl=30, keepalive_interval=0.01)) as manager:
        yield manager


@pytest.mark.parametrize(("ttl", "ok"), [
    pytest.param(25.0, True, id="minimum"),
    pytest.param(900.0, True, id="default"),
    pytest.param(86400.0, True, id="maximum"),
    pytest.param(24.9, False, id="too-short"),
    pytest.param(86400.5, False, id="too-long"),
    pytest.param(0.0, False, id="zero"),
])
def test_validate_lease_ttl(ttl: float, ok: bool) -> None:
    if ok:
        assert validate_lease_ttl(ttl) == ttl
    else:
        with pytest.raises(ValueError, match=r"--kvstore-lease-ttl must be between 25s and 86400s"):
            validate_lease_ttl(ttl)


async def test_keys_share_a_lease_until_it_is_full(kv: MemoryKV) -> None:
    leases = LeaseManager(kv, ttl=30, max_keys_per_lease=3)
    ids = await leases.leases_for([f"k{i}" for i in range(9)])
    assert [ids[0]] * 3 == ids[:3] and [ids[3]] * 3 == ids[3:6] and [ids[6]] * 3 == ids[6:]
    assert len(set(ids)) == 3 and leases.lease_count == 3 and kv.ops["grant_lease"] == 3
    assert await leases.lease_for("k0") == ids[0]  # a key keeps its lease
    leases.forget("k1")
    assert await leases.lease_for("new") == ids[0]  # every lease is full but the first: reuse it
    assert kv.ops["grant_lease"] == 3
    assert await leases.lease_for("newer") not in ids  # now a fourth lease is needed
    assert leases.keys_of(ids[0]) == {"k0", "k2", "new"}


async def test_keys_given_with_a_prefix_are_full_keys_everywhere_else(kv: MemoryKV) -> None:
    leases = LeaseManager(kv, ttl=30, max_keys_per_lease=3)
    ids = await leases.leases_for(["a", "b"], prefix="p/")
    lost: list[list[str]] = []
    leases.on_expired(lost.append)
    assert await leases.lease_for("c") == ids[0]  # the same lease fills up across prefixes
    assert leases.lease_of("p/a") == ids[0] and leases.lease_of("a") == 0
    assert leases.keys_of(ids[0]) == {"p/a", "p/b", "c"}
    leases.forget("a", prefix="p/")
    assert leases.lease_of("p/a") == 0
    assert await leases.leases_for(["z"], prefix="q/") == [ids[0]]  # the freed slot is reused
    kv.expire_lease(ids[0])
    assert await leases.check([ids[0]]) == [ids[0]]
    assert lost == [["c", "p/b", "q/z"]]
    assert leases.lease_of("p/b") == 0 and leases.lease_of("q/z") == 0


async def test_concurrent_callers_grant_one_lease(kv: MemoryKV) -> None:
    leases = LeaseManager(kv, ttl=30)
    a, b = await asyncio.gather(leases.lease_for("a"), leases.lease_for("b"))
    assert a == b and kv.ops["grant_lease"] == 1


async def test_keepalive_keeps_leases_alive(kv: MemoryKV, running: LeaseManager,
                                            eventually: Eventually) -> None:
    lease = await running.lease_for("k")
    await kv.put("k", b"v", lease=lease)
    for _ in range(4):  # 80 s of fake time on a 30 s lease, refreshed every 20 s
        seen = kv.ops["keepalive"]
        kv.advance(20)
        # The second refresh after the jump has started, so the first one has completed.
        await eventually(lambda s=seen: kv.ops["keepalive"] > s + 1)
    assert kv.snapshot() == {"k": b"v"}


async def test_lost_lease_is_reported_with_its_keys(kv: MemoryKV, running: LeaseManager,
                                                   eventually: Eventually) -> None:
    lost: list[list[str]] = []
    def failing(keys: list[str]) -> None:
        raise RuntimeError("observer bug")

    running.on_expired(failing)  # a failing observer does not stop the others
    unsubscribe = running.on_expired(lost.append)
    ids = await running.leases_for(["a", "b"])
    kv.expire_lease(ids[0])
    await eventually(lambda: lost == [["a", "b"]])
    assert running.lease_count == 0 and running.lease_of("a") == 0
    assert await running.lease_for("a") != ids[0]
    unsubscribe()
    kv.expire_lease(running.lease_of("a"))
    await eventually(lambda: running.lease_count == 0)
    assert lost == [["a", "b"]]


async def test_check_declares_only_missing_leases_lost(kv: MemoryKV) -> None:
    leases = LeaseManager(kv, ttl=30, max_keys_per_lease=1)
    lost: list[list[str]] = []
    leases.on_expired(lost.append)
    gone, alive = await leases.leases_for(["gone", "alive"])
    kv.expire_lease(gone)
    assert await leases.check([gone, alive, gone]) == [gone]
    assert lost == [["gone"]] and leases.lease_count == 1
    kv.fail_next(1, ops={"keepalive"})
    assert await leases.check([alive]) == []  # unreachable is not lost
    assert leases.lease_count == 1


async def test_keepalive_errors_do_not_drop_leases(kv: MemoryKV, running: LeaseManager,
                                                   eventually: Eventually) -> None:
    await running.lease_for("k")
    kv.fail_next(3, UnavailableError("etcd down"), ops={"keepalive"})
    seen = kv.ops["keepalive"]
    await eventually(lambda: kv.ops["keepalive"] > seen + 3)
    assert running.lease_count == 1


async def test_stop_revokes_only_when_asked(kv: MemoryKV) -> None:
    leases = LeaseManager(kv, ttl=30)
    leases.start()
    lease = await leases.lease_for("k")
    await kv.put("k", b"v", lease=lease)
    await leases.stop()
    assert kv.snapshot() == {"k": b"v"}
    leases.start()
    await leases.stop(revoke=True)
    assert kv.snapshot() == {} and leases.lease_count == 0


async def test_grant_ahead_has_the_next_lease_ready_before_the_current_one_is_full(
        kv: MemoryKV, eventually: Eventually) -> None:
    leases = LeaseManager(kv, ttl=30, max_keys_per_lease=4, grant_ahead=True)
    [first] = set(await leases.leases_for(["a", "b"]))  # half full: the next lease is granted meanwhile
    await eventually(lambda: kv.ops["grant_lease"] == 2)
    kv.pause()  # a writer that had to wait for a grant now would hang
    ids = await asyncio.wait_for(leases.leases_for(["c", "d", "e"]), 1.0)
    assert ids[:2] == [first, first] and ids[2] != first and leases.lease_count == 2
    kv.resume()
    await leases.leases_for(["f"])  # the spare, now current, is half full: one more ahead
    await eventually(lambda: kv.ops["grant_lease"] == 3)
    assert leases.lease_count == 3
    await leases.stop()


async def test_a_failed_grant_ahead_leaves_granting_to_the_writer(kv: MemoryKV, eventually: Eventually) -> None:
    leases = LeaseManager(kv, ttl=30, max_keys_per_lease=2, grant_ahead=True)
    ids = await leases.leases_for(["a"])  # half full: a grant ahead is started (it has not run yet)
    kv.fail_next(1, ops={"grant_lease"})
    await eventually(lambda: kv.ops["grant_lease"] == 2 and leases._granting_ahead is None)
    assert leases.lease_count == 1  # the failed grant left nothing behind
    more = await leases.leases_for(["b", "c"])  # the writer grants what it needs itself
    assert more[0] == ids[0] and more[1] != ids[0] and leases.lease_count == 2
    await leases.stop()
