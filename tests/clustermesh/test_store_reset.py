"""An etcd that restarts with an empty data dir (the pod's emptyDir) under a running exporter:
everything comes back at once, in start-up order, and the exporter is not ready meanwhile."""

from __future__ import annotations

import asyncio
import time

import pytest

from apiserver.clustermesh.exporter import ExporterTimings
from tests.clustermesh.conftest import Harness
from tests.clustermesh.test_exporter import SHAPE, expected_state, seed

# The production lease keepalive (a third of the 15 min TTL): a lost lease is noticed only after
# minutes, so the keys must come back through the reset monitor, not through lease loss.
TIMINGS = ExporterTimings(heartbeat_interval=60, cluster_config_interval=300, store_check_interval=0.2)
IP_CANARY = "cilium/synced/cluster1/cilium/state/ip/v1"


@pytest.mark.parametrize("member", [
    pytest.param(None, id="same-member-empty"),
    # Another cluster token: a new etcd cluster ID at the same address.
    pytest.param("another-etcd", id="another-cluster"),
])
async def test_an_etcd_restarted_empty_gets_everything_back_and_readiness_tells(
        harness: Harness, member: str | None) -> None:
    seed(harness)
    exporter = await harness.start(timings=TIMINGS)
    expected = expected_state(SHAPE)
    assert await harness.data() == expected
    await harness.etcd.stop()
    if member is not None:
        harness.etcd.extra_args = ("--initial-cluster-token", member)
    await harness.etcd.restart(wipe=True)
    started = time.monotonic()
    deadline = started + 60  # generous: the monitor checks every 0.2 s
    while exporter.store_monitor.resets == 0:
        assert time.monotonic() < deadline, "the exporter never noticed that etcd lost its data"
        await asyncio.sleep(0.01)
    while not exporter.ready():
        assert time.monotonic() < deadline, "the exporter never became ready again"
        await asyncio.sleep(0.01)
    # Ready again: every key, the config and every canary are back.
    if harness.client is not None and member is not None:
        harness.client.forget_cluster_id()
    everything = await harness.dump()
    assert await harness.data() == expected
    assert "cilium/cluster-config/cluster1" in everything and IP_CANARY in everything
    assert exporter.store_monitor.resets == 1
    if member is not None:
        assert "cluster ID changed" in (exporter.store_monitor.last_reason or "")


async def test_not_ready_while_etcd_is_down_and_nothing_rewritten_after_a_plain_restart(
        harness: Harness) -> None:
    seed(harness)
    exporter = await harness.start(timings=TIMINGS)
    expected = expected_state(SHAPE)
    await harness.etcd.kill()
    deadline = time.monotonic() + 60
    while exporter.ready():
        assert time.monotonic() < deadline, "still ready with etcd gone"
        await asyncio.sleep(0.01)
    await harness.etcd.start()  # with its data
    while not exporter.ready():
        assert time.monotonic() < deadline, "not ready again after etcd came back"
        await asyncio.sleep(0.01)
    assert await harness.data() == expected
    assert exporter.store_monitor.resets == 0
