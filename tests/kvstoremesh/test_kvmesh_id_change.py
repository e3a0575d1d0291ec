"""A remote whose cluster config advertises another cluster ID after a restart (upstream's
``pkg/clustermesh/remote_cluster.go`` ``onUpdateConfig``: every entry cached under the old ID is
drained, the old ID released, the new one reserved -- or refused when it is ours or another
remote's). Config, cache and status must agree at every step."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from kvmesh_etcd import ETCD_FAST, Mesh, client_of, etcds, seed, snapshot
from kvmesh_helpers import RemoteData, eventually, local_view

pytestmark = pytest.mark.slow


async def _restart_with_id(mesh: Mesh, server: Any, name: str, cluster_id: int) -> None:
    # A store that lived a while: its revision, as KVStoreMesh's watches know it, is well above
    # what the new store reaches at first, so the reset shows: the watches cannot resume there.
    key = f"cilium/state/nodes/v1/{name}/churn"
    async with client_of(server) as client:
        for i in range(30):
            await client.put(key, b"%d" % i)
    await mesh.mirrored(name, server)  # the watches are past those revisions
    await server.kill()
    await server.restart(wipe=True)
    await seed(server, RemoteData.sample(name, cluster_id, nodes=1, identities=1, ips=1))


async def test_a_new_free_id_drains_the_old_cache_and_mirrors_under_the_new_one(tmp_path: Path) -> None:
    # No status probe in this test's time: the watches themselves must notice the reset store.
    watches_only = dataclasses.replace(ETCD_FAST, status_check_interval=3600.0)
    async with etcds("local", "r2") as srv:
        await seed(srv["r2"], RemoteData.sample("r2", 2, nodes=3))
        async with Mesh(tmp_path, srv["local"], config=watches_only) as mesh:
            mesh.add("r2", srv["r2"].endpoint)
            await mesh.mirrored("r2", srv["r2"])
            await _restart_with_id(mesh, srv["r2"], "r2", 7)
            await mesh.mirrored("r2", srv["r2"], timeout=30)  # exact: nothing of ID 2 is left
            entry = await mesh.cluster("r2")
            assert entry is not None and entry["config"]["cluster-id"] == 7


@pytest.mark.parametrize(("taken_by", "reason"), [
    pytest.param("local", "which is the ID of the local cluster", id="our-own-id"),
    pytest.param("r3", "already used by remote cluster 'r3'", id="another-remotes-id"),
])
async def test_an_id_that_is_not_free_is_refused_with_the_cache_drained(
        tmp_path: Path, taken_by: str, reason: str) -> None:
    async with etcds("local", "r2", "r3") as srv:
        await seed(srv["r2"], RemoteData.sample("r2", 2, nodes=3))
        await seed(srv["r3"], RemoteData.sample("r3", 3))
        async with Mesh(tmp_path, srv["local"]) as mesh:
            mesh.add("r2", srv["r2"].endpoint)
            mesh.add("r3", srv["r3"].endpoint)
            await mesh.mirrored("r2", srv["r2"])
            await mesh.mirrored("r3", srv["r3"])
            await _restart_with_id(mesh, srv["r2"], "r2", 1 if taken_by == "local" else 3)

            seen: list[object] = []

            async def refused() -> bool:
                entry = await mesh.cluster("r2")
                view = local_view(await snapshot(srv["local"]), "r2")
                seen[:] = [entry, sorted(view)[:3]]
                return (entry is not None and not entry.get("ready") and reason in entry.get("status", "")
                        and view == {})
            try:
                await eventually(refused, 30, what="r2 refused, its cache and cached config gone")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {seen}") from None
            entry = await mesh.cluster("r2")
            assert entry is not None
            # The status says what was found, and that it is not usable.
            assert entry["config"]["cluster-id"] == (1 if taken_by == "local" else 3)
            await mesh.mirrored("r3", srv["r3"])  # the other remote is untouched
