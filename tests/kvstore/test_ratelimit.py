"""APILimiter: built from the parsed --kvstore-opt, token bucket on a fake clock, bootstrap rate, in-flight cap."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstore.ratelimit import APILimiter, LimiterValues
from apiserver.metrics import APISERVER_NAMESPACE, ApiLimiterMetrics, Metrics


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
    pytest.param({"etcd.qps": "0"}, None, 1, None, False, id="zero-is-unlimited"),
    pytest.param({"etcd.qps": "0", "etcd.maxInflight": "4"}, None, 1, 4, False, id="unlimited-rate-with-a-cap"),
    pytest.param({"etcd.qps": "5", "etcd.maxInflight": "0"}, 5, 5, 5, False, id="inflight-zero-is-qps"),
    pytest.param({"etcd.qps": "+5"}, 5, 5, 5, False, id="go-atoi-sign"),
    pytest.param({"etcd.qps": "5", "etcd.bootstrapQps": "0"}, 5, 5, 5, False, id="bootstrap-zero-is-off"),
])
def test_from_options(opts: dict[str, str], rate: float | None, burst: int, max_inflight: int | None,
                      bootstrapping: bool) -> None:
    limiter = APILimiter.from_options(KVStoreOptions.parse({"etcd.address": "http://e", **opts}))
    assert (limiter.rate, limiter.burst, limiter.max_inflight, limiter.bootstrapping) == (
        rate, burst, max_inflight, bootstrapping)


@pytest.mark.parametrize(("opts", "rate", "max_inflight", "bootstrapping"), [
    pytest.param({}, None, None, False, id="unset-no-token-bucket"),
    pytest.param({"etcd.maxInflight": "3"}, None, 3, False, id="unset-qps-keeps-max-inflight"),
    pytest.param({"etcd.bootstrapQps": "10000"}, None, None, False, id="bootstrap-alone-is-unlimited"),
    pytest.param({"etcd.qps": "20"}, 20, 20, False, id="set-as-upstream"),
    pytest.param({"etcd.qps": "20", "etcd.bootstrapQps": "10000"}, 10000, 20, True, id="apiserver-helm"),
])
def test_for_batched_writes(opts: dict[str, str], rate: float | None, max_inflight: int | None,
                            bootstrapping: bool) -> None:
    limiter = APILimiter.for_batched_writes(KVStoreOptions.parse({"etcd.address": "http://e", **opts}))
    assert (limiter.rate, limiter.max_inflight, limiter.bootstrapping) == (rate, max_inflight, bootstrapping)


async def test_token_bucket_paces_after_the_burst() -> None:
    fake = FakeTime()
    limiter = APILimiter(10, burst=2, clock=fake.clock, sleep=fake.sleep)
    for _ in range(12):
        async with limiter.request():
            pass
    assert fake.now == pytest.approx(1.0)  # 2 free, then 10 at 0.1 s each
    assert limiter.acquired == 12


async def test_bootstrap_rate_then_steady_rate() -> None:
    fake = FakeTime()
    limiter = APILimiter(10, bootstrap_qps=1000, clock=fake.clock, sleep=fake.sleep)
    for _ in range(110):  # burst 10 (the steady qps), then 100 at 1 ms
        async with limiter.request():
            pass
    assert fake.now == pytest.approx(0.1)
    limiter.bootstrap_complete()
    limiter.bootstrap_complete()  # idempotent
    assert limiter.rate == 10 and not limiter.bootstrapping
    start = fake.now
    for _ in range(10):
        async with limiter.request():
            pass
    assert fake.now - start == pytest.approx(1.0)


async def test_unlimited_never_waits() -> None:
    fake = FakeTime()
    limiter = APILimiter(None, clock=fake.clock, sleep=fake.sleep)
    for _ in range(1000):
        async with limiter.request():
            pass
    assert fake.now == 0.0 and limiter.rate is None


async def test_in_flight_cap() -> None:
    limiter = APILimiter(None, max_inflight=2)
    release = asyncio.Event()
    entered: list[int] = []

    async def op(n: int) -> None:
        async with limiter.request():
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
    limiter = APILimiter(1, burst=1, clock=fake.clock, sleep=fake.sleep)
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


# ---- what the limiter reports (upstream's api-limiter metrics) -------------------------------------

class Recorder:
    def __init__(self) -> None:
        self.values: list[LimiterValues] = []

    def __call__(self, values: LimiterValues) -> None:
        self.values.append(values)


async def test_reports_configuration_then_each_request_with_means_over_the_last_ten() -> None:
    fake = FakeTime()
    limiter = APILimiter(10, max_inflight=4, clock=fake.clock, sleep=fake.sleep)
    seen = Recorder()
    limiter.observe(seen)
    assert seen.values == [LimiterValues(0.0, 0.0, 0, 4, 10.0, 10, None)]
    for i in range(12):  # processing takes i seconds; the burst of 10 covers the first 10
        async with limiter.request():
            fake.now += i
    last = seen.values[-1]
    assert last.outcome == "success" and last.in_flight == 0
    assert last.mean_processing_seconds == pytest.approx(sum(range(2, 12)) / 10)  # the last ten only
    # The bucket refilled while the slow requests ran: nobody waited.
    assert last.mean_wait_seconds == 0.0 and len(seen.values) == 13


async def test_waiting_requests_report_their_wait() -> None:
    fake = FakeTime()
    limiter = APILimiter(1, clock=fake.clock, sleep=fake.sleep)  # burst 1: every request after the first waits 1 s
    seen = Recorder()
    limiter.observe(seen)
    for _ in range(3):
        async with limiter.request():
            pass
    assert [v.mean_wait_seconds for v in seen.values[1:]] == pytest.approx([0.0, 0.5, 2 / 3])


async def test_a_failed_or_cancelled_request_is_reported_as_failed() -> None:
    fake = FakeTime()
    limiter = APILimiter(None, max_inflight=1, clock=fake.clock, sleep=fake.sleep)
    seen = Recorder()
    limiter.observe(seen)
    with pytest.raises(RuntimeError):
        async with limiter.request():
            raise RuntimeError("etcd said no")
    assert seen.values[-1].outcome == "fail" and limiter.in_flight == 0
    async with limiter.request():
        waiter = asyncio.ensure_future(limiter.request().__aenter__())  # no free slot: waits
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert seen.values[-1].outcome == "fail" and limiter.in_flight == 1
    assert seen.values[-1].outcome == "success" and limiter.in_flight == 0
    # Unlimited: no bucket, so rate and burst are reported as 0 (upstream: no limiter).
    assert (seen.values[-1].rate, seen.values[-1].burst, seen.values[-1].max_inflight) == (0.0, 0, 1)


async def test_bootstrap_complete_reports_the_steady_rate() -> None:
    limiter = APILimiter(20, bootstrap_qps=10000)
    seen = Recorder()
    limiter.observe(seen)
    limiter.bootstrap_complete()
    assert [(v.rate, v.burst, v.outcome) for v in seen.values] == [(10000.0, 20, None), (20.0, 20, None)]


async def test_metrics_series_follow_upstream_names_and_labels() -> None:
    metrics = Metrics(APISERVER_NAMESPACE)
    limiter = APILimiter(20, max_inflight=5)
    limiter.observe(ApiLimiterMetrics(metrics))
    async with limiter.request():
        pass
    with pytest.raises(ValueError):
        async with limiter.request():
            raise ValueError("boom")

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(f"cilium_clustermesh_apiserver_api_limiter_{name}",
                                                 {"api_call": "etcd", **labels})

    assert sample("processed_requests_total", outcome="success", return_code="200") == 1
    assert sample("processed_requests_total", outcome="fail", return_code="500") == 1
    assert (sample("rate_limit", value="limit"), sample("rate_limit", value="burst")) == (20, 20)
    assert (sample("requests_in_flight", value="in-flight"),
            sample("requests_in_flight", value="limit")) == (0, 5)
    assert sample("processing_duration_seconds", value="mean") is not None
    assert sample("processing_duration_seconds", value="estimated") == 0
    assert sample("wait_duration_seconds", value="mean") == pytest.approx(0, abs=0.01)  # real clock: no wait
    assert [sample("wait_duration_seconds", value=v) for v in ("min", "max")] == [0, 0]
    assert metrics.registry.get_sample_value("cilium_clustermesh_apiserver_api_limiter_adjustment_factor",
                                             {"api_call": "etcd"}) == 0
