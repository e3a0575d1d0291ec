"""The benchmark's floors on a small data set: they write exactly what the real components write."""

from __future__ import annotations

import pytest

from apiserver.paths import IP_DEFAULT_PREFIX
from bench import floor
from bench._dataset import BenchShape, cluster_objects, expected_state, to_cache
from bench._kv import connect, dump
from bench.mesh import fill_remote
from localmesh.kubesim import KubeSim
from localmesh.testing.etcd import EtcdServer

SHAPE = BenchShape().scaled(0.005)  # 500 endpoints


async def test_export_floor_writes_the_endpoint_keys(kubesim: KubeSim, etcd_server: EtcdServer) -> None:
    objects = list(cluster_objects(SHAPE))
    kubesim.load(objects)
    expected = expected_state(SHAPE, objects)
    client = await connect(etcd_server.endpoint)
    try:
        result = await floor.export_floor(kubesim.url, etcd_server, client, expected, kubesim_pid=None)
        ips = [k for k in expected if k.startswith(IP_DEFAULT_PREFIX + "/")]
        assert result.keys == len(ips) == 2 * SHAPE.endpoints
        assert result.seconds > 0 and {"etcd", "floor"} <= set(result.cpu)
        assert await dump(client, "") == {}  # checked, then wiped
    finally:
        await client.close()


async def test_mirror_floor_copies_the_remote_under_the_cache_prefix(etcd_server: EtcdServer) -> None:
    async with EtcdServer(name="floor-remote") as remote_server:
        state = await fill_remote(remote_server, SHAPE)
        remote, local = await connect(remote_server.endpoint), await connect(etcd_server.endpoint)
        try:
            result = await floor.mirror_floor(remote_server, remote, SHAPE.name, etcd_server, local,
                                              to_cache(SHAPE.name, state), page_size=64)
            assert result.keys == len(state)
        finally:
            await remote.close()
            await local.close()


async def test_a_floor_that_writes_wrong_bytes_is_not_reported(etcd_server: EtcdServer) -> None:
    async with EtcdServer(name="floor-remote") as remote_server:
        state = await fill_remote(remote_server, SHAPE)
        remote, local = await connect(remote_server.endpoint), await connect(etcd_server.endpoint)
        wrong = {k: v + b" " for k, v in to_cache(SHAPE.name, state).items()}
        try:
            with pytest.raises(AssertionError, match=r"mirror floor: .* wrong value"):
                await floor.mirror_floor(remote_server, remote, SHAPE.name, etcd_server, local, wrong, page_size=64)
        finally:
            await remote.close()
            await local.close()
