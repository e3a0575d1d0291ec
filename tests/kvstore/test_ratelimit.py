"""RateLimiter: --kvstore-opt parsing, token bucket on a fake clock, bootstrap rate, in-flight cap."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.kvstore.ratelimit import RateLimiter


class FakeTime:
    """A clock that only moves when the limiter sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@pytest.mark.parametrize(("opts", "rate", "burst", "max_inflight", "bootstrapping"), [
    pytest.param({}, 20, 20, 20, False, id="defaults"),
    pytest.param({"etcd.qps": "100", "etcd.maxInflight": "10"}, 100, 100, 10, False, id="kvstoremesh-helm"),
    pytest.param({"etcd.qps": "20", "etcd.bootstrapQps": "10000"}, 10000, 20, 20, True, id="apiserver-helm"),
    pytest.param({"etcd.qps": "0"}, None, 1, None, False, id="unlimited"),
    pytest.param({"etcd.qps": "", "etcd.bootstrapQps": ""}, 20, 20, 20, False, id="empty-values-are-unset"),
    pytest.param({"etcd.qps": "5", "etcd.maxInflight": "0"}, 5, 5, None, False, id="no-inflight-cap"),
])
def test_from_kvstore_opts(opts: dict[str, str], rate: float | None, burst: int, max_inflight: int | None,
                           bootstrapping: bool) -> None:
    limiter = RateLimiter.from_kvstore_opts(opts)
    assert (limiter.rate, limiter.burst, limiter.max_inflight, limiter.bootstrapping) == (
        rate, burst, max_inflight, bootstrapping)


@pytest.mark.parametrize(("opts", "rate", "max_inflight", "bootstrapping"), [
    pytest.param({}, None, None, False, id="unset-no-token-bucket"),
    pytest.param({"etcd.qps": ""}, None, None, False, id="empty-is-unset"),
    pytest.param({"etcd.maxInflight": "3"}, None, 3, False, id="unset-qps-keeps-max-inflight"),
    pytest.param({"etcd.bootstrapQps": "10000"}, None, None, False, id="bootstrap-alone-is-unlimited"),
    pytest.param({"etcd.qps": "20"}, 20, 20, False, id="set-as-upstream"),
    pytest.param({"etcd.qps": "20", "etcd.bootstrapQps": "10000"}, 10000, 20, True, id="apiserver-helm"),
])
def test_for_batched_writes(opts: dict[str, str], rate: float | None, max_inflight: int | None,
                            bootstrapping: bool) -> None:
    limiter = RateLimiter.for_batched_writes(opts)
    assert (limiter.rate, limiter.max_inflight, limiter.bootstrapping) == (rate, max_inflight, bootstrapping)
    with pytest.raises(ValueError, match=r"etcd\.qps"):
        RateLimiter.for_batched_writes({**opts, "etcd.qps": "fast"})


def test_non_integer_option_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match=r"etcd\.qps='fast'"):
        RateLimiter.from_kvstore_opts({"etcd.qps": "fast"})


async def test_token_bucket_paces_after_the_burst() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, burst=2, clock=fake.clock, sleep=fake.sleep)
    for _ in range(12):
        async with limiter:
            pass
    assert fake.now == pytest.approx(1.0)  # 2 free, then 10 at 0.1 s each
    assert limiter.acquired == 12


async def test_bootstrap_rate_then_steady_rate() -> None:
    fake = FakeTime()
    limiter = RateLimiter(10, bootstrap_qps=1000, clock=fake.clock, sleep=fake.sleep)
    for _ in range(110):  # burst 10 (the steady qps), then 100 at 1 ms
        async with limiter:
            pass
    assert fake.now == pytest.approx(0.1)
    limiter.bootstrap_complete()
    limiter.bootstrap_complete()  # idempotent
    assert limiter.rate == 10 and not limiter.bootstrapping
    start = fake.now
    for _ in range(10):
        async with limiter:
            pass
    assert fake.now - start == pytest.approx(1.0)


async def test_unlimited_never_waits() -> None:
    fake = FakeTime()
    limiter = RateLimiter(None, clock=fake.clock, sleep=fake.sleep)
    for _ in range(1000):
        async with limiter:
            pass
    assert fake.now == 0.0 and limiter.rate is None


async def test_in_flight_cap() -> None:
    limiter = RateLimiter(None, max_inflight=2)
    release = asyncio.Event()
    entered: list[int] = []

    async def op(n: int) -> None:
        async with limiter:
            entered.append(n)
            await release.wait()

    tasks = [asyncio.ensure_future(op(n)) for n in range(3)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert sorted(entered) == [0, 1] and limiter.in_flight == 2
    release.set()
    await asyncio.gather(*tasks)
    assert sorted(entered) == [0, 1, 2] and limiter.in_flight == 0


async def test_cancelled_wait_gives_its_token_back() -> None:
    fake = FakeTime()
    limiter = RateLimiter(1, burst=1, clock=fake.clock, sleep=fake.sleep)
    await limiter.acquire()
    limiter.release()
    waiter = asyncio.ensure_future(limiter.acquire())  # reserves the next token, due in 1 s
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert fake.now == pytest.approx(1.0) and limiter.in_flight == 0
    await limiter.acquire()  # the token refilled meanwhile is free: no debt was kept
    assert fake.now == pytest.approx(1.0)
