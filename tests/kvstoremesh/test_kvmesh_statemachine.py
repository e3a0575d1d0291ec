"""KVStoreMesh state machine over in-memory etcds: mirror, reconnect, validation, removal, readiness."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from kvmesh_helpers import CANARY, RemoteData, eventually
from kvmesh_memmesh import MemMesh

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert.clusterconfig import CiliumClusterConfig, cluster_config_value
from apiserver.kvstoremesh._remote import WAITING
from localmesh.memory.kv import MemoryKV


def failure_errors(caplog: pytest.LogCaptureFixture, cluster: str) -> list[str]:
    """The ``error`` field of every "Connection to remote cluster failed" log line of ``cluster``."""
    return [r._fields["error"] for r in caplog.records  # type: ignore[attr-defined]
            if r.getMessage() == "Connection to remote cluster failed" and r._fields["cluster"] == cluster]  # type: ignore[attr-defined]


async def test_initial_mirror_of_three_remotes_is_exact_and_ready(memmesh: MemMesh) -> None:
    for i, name in enumerate(("c2", "c3", "c4"), start=2):
        await memmesh.add_remote(RemoteData.sample(name, i, nodes=3 + i))
    await memmesh.start()
    for name in ("c2", "c3", "c4"):
        await memmesh.mirrored(name)
    await eventually(memmesh.mesh.ready, what="readiness")
    assert memmesh.bootstrapped == 1
    assert memmesh.metric("bootstrap_seconds", source_cluster="local") is not None
    assert memmesh.metric("remote_clusters") == 3
    # The local cluster config of a mirrored cluster, byte for byte.
    assert memmesh.local.snapshot()["cilium/cluster-config/c4"] == (
        b'{"id":4,"capabilities":{"syncedCanaries":true,"cached":true,"maxConnectedClusters":255,'
        b'"serviceExportsEnabled":false}}')
    st = memmesh.status("c3")
    assert (st.ready, st.connected, st.num_nodes, st.num_identities, st.num_endpoints, st.num_shared_services,
            st.num_service_exports, st.num_failures) == (True, True, 6, 2, 2, 1, 1, 0)
    assert st.config.retrieved and st.config.cluster_id == 3 and st.config.sync_canaries
    assert st.synced.service_exports is True
    assert st.status.startswith("etcd: 1/1 connected")
    assert memmesh.metric("remote_cluster_readiness_status", target_cluster="c3") == 1
    # Nothing outside the documented key space was written.
    allowed = ("cilium/cache/", "cilium/synced/", "cilium/cluster-config/")
    assert all(k.startswith(allowed) for k in memmesh.local.snapshot())


async def test_live_updates_and_deletes_and_garbage_values(memmesh: MemMesh) -> None:
    remote = await memmesh.add_remote(RemoteData.sample("c2", 2))
    await memmesh.start()
    await memmesh.mirrored("c2")
    await remote.put("cilium/state/nodes/v1/c2/node-9", b"\x00not json at all\xff")
    await remote.put("cilium/state/services/v1/c2/default/svc-0", b'{"changed":true}')
    await remote.delete("cilium/state/identities/v1/id/131072")
    await remote.delete("cilium/state/ip/v1/default/10.2.0.1")
    await remote.put("cilium/state/serviceexports/v1/c2/ns2/x", b"{}")
    # Keys that do not belong to c2 (other cluster's paths, value/ identities) are never mirrored.
    await remote.put("cilium/state/nodes/v1/c20/node-0", b"{}")
    await remote.put("cilium/state/nodes/v1/other/node-0", b"{}")
    await remote.put("cilium/state/identities/v1/value/k8s:app=a;/node", b"131072")
    await memmesh.mirrored("c2")
    local = memmesh.local.snapshot()
    assert local["cilium/cache/nodes/v1/c2/node-9"] == b"\x00not json at all\xff"
    assert not any("/other/" in k or "/c20/" in k or "/value/" in k for k in local)


async def test_keys_that_cannot_be_mirrored_are_skipped_and_counted(memmesh: MemMesh) -> None:
    data = RemoteData.sample("c2", 2)
    remote = await memmesh.add_remote(data)
    # Listed in the same page as valid keys: "/" is no key under the local cache prefix.
    await remote.put("cilium/state/nodes/v1/c2//", b"{}")
    await memmesh.start()
    nodes = "cilium/cache/nodes/v1/c2/"
    want = {nodes + k.rsplit("/", 1)[1]: v for k, v in remote.snapshot().items()
            if k.startswith("cilium/state/nodes/v1/c2/node-")}
    await eventually(lambda: {k: v for k, v in memmesh.local.snapshot().items() if k.startswith(nodes)} == want,
                     what="the valid nodes mirrored")
    assert memmesh.metric("malformed_objects_total", resource="nodes", reason="invalid-key") == 1
    # Live: the watch path skips it too, and later updates still flow.
    await remote.put("cilium/state/nodes/v1/c2///", b"{}")
    await remote.put("cilium/state/nodes/v1/c2/node-new", b'{"new":1}')
    await eventually(lambda: memmesh.local.snapshot().get(nodes + "node-new") == b'{"new":1}', what="live update")
    assert memmesh.metric("malformed_objects_total", resource="nodes", reason="invalid-key") == 2
    assert not any(k.startswith(nodes) and k.endswith("/") for k in memmesh.local.snapshot())


async def test_canary_gating_and_remote_without_canaries(memmesh: MemMesh) -> None:
    # c2 advertises syncedCanaries but has not written the identities canary yet.
    gated = await memmesh.add_remote(RemoteData.sample("c2", 2), with_canaries=False)
    for key, value in memmesh.data["c2"].canaries().items():
        if "identities" not in key:
            await gated.put(key, value)
    # c3 does not advertise canaries: everything is watched at once.
    c3 = RemoteData.sample("c3", 3)
    c3.config = dataclasses.replace(c3.config, synced_canaries=False)  # type: ignore[arg-type]
    await memmesh.add_remote(c3, with_canaries=False)
    await memmesh.start()
    await memmesh.mirrored("c3")
    await eventually(lambda: memmesh.status("c2").synced.nodes, what="c2 nodes")
    view = memmesh.view("c2")
    assert not any(k.startswith("cilium/cache/identities/") for k in view)
    assert "cilium/synced/c2/cilium/cache/identities/v1" not in view
    assert not memmesh.status("c2").ready and not memmesh.mesh.ready()
    await gated.put("cilium/synced/c2/cilium/state/identities/v1", CANARY)
    await memmesh.mirrored("c2")
    await eventually(memmesh.mesh.ready, what="readiness")


async def test_service_exports_absent_are_drained_and_marked_synced(memmesh: MemMesh) -> None:
    remote = await memmesh.add_remote(RemoteData.sample("c2", 2, mcs=True))
    await memmesh.start()
    await memmesh.mirrored("c2")
    assert any(k.startswith("cilium/cache/serviceexports/v1/c2/") for k in memmesh.view("c2"))
    # The remote is downgraded: no serviceExportsEnabled any more. Reconnect (config file change).
    old = CiliumClusterConfig(id=2, synced_canaries=True, max_connected_clusters=255)
    await remote.put("cilium/cluster-config/c2", cluster_config_value(old))
    memmesh.write_config("c2", extra="# changed\n")
    await memmesh.mirrored("c2", config=old)
    view = memmesh.view("c2")
    assert not any(k.startswith("cilium/cache/serviceexports/") for k in view)
    assert "cilium/synced/c2/cilium/cache/serviceexports/v1" in view  # canary still written
    assert b"serviceExportsEnabled" not in view["cilium/cluster-config/c2"]
    st = memmesh.status("c2")
    assert st.synced.service_exports is None and st.config.service_exports_enabled is None and st.ready


async def test_cached_remote_is_read_from_its_cache_paths(memmesh: MemMesh) -> None:
    # c2's etcd is itself fed by a KVStoreMesh: data under cilium/cache/.../c2.
    data = RemoteData("c2", 2, config=CiliumClusterConfig(id=2, synced_canaries=True, cached=True,
                                                          max_connected_clusters=255, service_exports_enabled=False))
    sample = RemoteData.sample("c2", 2)
    for key, value in sample.keys.items():
        for r_state, r_cache in (("cilium/state/nodes/v1/", "cilium/cache/nodes/v1/"),
                                 ("cilium/state/services/v1/", "cilium/cache/services/v1/"),
                                 ("cilium/state/serviceexports/v1/", "cilium/cache/serviceexports/v1/"),
                                 ("cilium/state/identities/v1/id/", "cilium/cache/identities/v1/c2/id/"),
                                 ("cilium/state/ip/v1/default/", "cilium/cache/ip/v1/c2/")):
            if key.startswith(r_state):
                data.keys[r_cache + key[len(r_state):]] = value
    data.keys["cilium/state/nodes/v1/c2/ignored"] = b"state paths are not read from a cache"
    remote = await memmesh.add_remote(data, with_canaries=False)
    for r in ("nodes", "services", "serviceexports", "identities", "ip"):
        await remote.put(f"cilium/synced/c2/cilium/cache/{r}/v1", CANARY)
    await memmesh.start()
    await memmesh.mirrored("c2")
    assert memmesh.view("c2")["cilium/cache/identities/v1/c2/id/131072"] == b"k8s:app=a0;"
    assert "cilium/cache/nodes/v1/c2/ignored" not in memmesh.view("c2")
    assert memmesh.status("c2").config.kvstoremesh is True


async def test_invalid_remote_configs_are_refused_others_keep_mirroring(
        make_memmesh: Callable[..., MemMesh]) -> None:
    mm = make_memmesh(local=ClusterInfo("local", 1, 511), per_cluster_ready_timeout=0.5)
    good = RemoteData.sample("good", 2)
    good.config = dataclasses.replace(good.config, max_connected_clusters=511)  # type: ignore[arg-type]
    await mm.add_remote(good)
    bad = {
        "id-zero": CiliumClusterConfig(id=0, synced_canaries=True, max_connected_clusters=511),
        "id-too-big": CiliumClusterConfig(id=600, synced_canaries=True, max_connected_clusters=511),
        "id-of-local": CiliumClusterConfig(id=1, synced_canaries=True, max_connected_clusters=511),
        "id-of-good": CiliumClusterConfig(id=2, synced_canaries=True, max_connected_clusters=511),
        "max-mismatch": CiliumClusterConfig(id=5, synced_canaries=True, max_connected_clusters=255),
    }
    for name, cfg in bad.items():
        data = RemoteData.sample(name, 7)
        data.config = cfg
        await mm.add_remote(data)
    garbage = await mm.add_remote(RemoteData.sample("garbage", 8))
    await garbage.put("cilium/cluster-config/garbage", b"{not json")
    missing = await mm.add_remote(RemoteData.sample("missing", 9))
    await missing.delete("cilium/cluster-config/missing")
    await mm.start()
    await mm.mirrored("good")
    refused = [*bad, "garbage", "missing"]
    await eventually(lambda: all(mm.status(n).num_failures >= 2 for n in refused), what="failures counted")
    expect_text = {"id-zero": "ClusterID 0 is reserved", "id-too-big": "ClusterID > 511",
                   "id-of-local": "ID of the local cluster", "id-of-good": "already used by remote cluster 'good'",
                   "max-mismatch": "mismatched MaxConnectedClusters", "garbage": "not valid JSON",
                   "missing": "required but not found"}
    for name, text in expect_text.items():
        st = mm.status(name)
        assert text in st.status, (name, st.status)
        assert not st.ready and st.last_failure is not None
        assert mm.metric("remote_cluster_failures", target_cluster=name) == st.num_failures
        assert mm.view(name) == {}, name  # nothing written for a refused remote
    await eventually(mm.mesh.ready, what="readiness despite refused remotes")
    await mm.mirrored("good")
    assert mm.status("good").num_failures == 0


async def test_a_retry_keeps_saying_why_the_last_attempt_failed(
        make_memmesh: Callable[..., MemMesh]) -> None:
    mm = make_memmesh(per_cluster_ready_timeout=0.5)
    garbage = await mm.add_remote(RemoteData.sample("garbage", 8))
    await garbage.put("cilium/cluster-config/garbage", b"{not json")
    seen: list[str] = []

    def on_connect(name: str) -> None:  # runs inside the next attempt, before it connects
        st = mm.status(name)
        if st is not None and st.num_failures >= 1:
            seen.append(st.status)

    mm.remotes.on_connect = on_connect
    await mm.start()
    await eventually(lambda: len(seen) >= 2, what="two retries after a failure")
    assert all("not valid JSON" in text for text in seen), seen
    assert mm.status("garbage").status != WAITING


async def test_own_and_invalid_names_are_ignored(memmesh: MemMesh) -> None:
    await memmesh.add_remote(RemoteData.sample("c2", 2))
    memmesh.write_config("local")
    memmesh.write_config("Not_Valid")
    await memmesh.start()
    await memmesh.mirrored("c2")
    assert [s.name for s in memmesh.mesh.status()] == ["c2"]
    assert memmesh.remotes.connects.keys() == {"c2"}


async def test_reconnect_relists_and_deletes_stale_keys(memmesh: MemMesh,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    remote = await memmesh.add_remote(RemoteData.sample("c2", 2, nodes=5))
    await memmesh.start()
    await memmesh.mirrored("c2")
    memmesh.remotes.down.add("c2")
    remote.fail_next(2, ops={"status"})  # two failed probes: the connection is declared lost
    await eventually(lambda: not memmesh.status("c2").connected and memmesh.status("c2").num_failures >= 1,
                     what="disconnected")
    # While disconnected: deletions, changes and additions on the remote.
    await remote.delete("cilium/state/nodes/v1/c2/node-0")
    await remote.delete("cilium/state/nodes/v1/c2/node-1")
    await remote.put("cilium/state/nodes/v1/c2/node-2", b"changed")
    await remote.put("cilium/state/nodes/v1/c2/node-7", b"new")
    st = memmesh.status("c2")
    assert st.num_failures >= 1 and not st.ready
    assert memmesh.metric("remote_cluster_readiness_status", target_cluster="c2") == 0
    assert (memmesh.metric("remote_cluster_last_failure_ts", target_cluster="c2") or 0) > 0
    assert any("status checks failed" in e for e in failure_errors(caplog, "c2"))
    memmesh.remotes.down.discard("c2")
    await memmesh.mirrored("c2")
    await eventually(lambda: memmesh.status("c2").ready, what="ready again")


async def test_cluster_id_change_and_store_reset_force_a_relist(memmesh: MemMesh,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    await memmesh.add_remote(RemoteData.sample("c2", 2, nodes=4))
    await memmesh.start()
    await memmesh.mirrored("c2")
    connects = memmesh.remotes.connects["c2"]
    # Same address, different etcd cluster (new cluster ID), fewer keys.
    smaller = RemoteData.sample("c2", 2, nodes=1)
    await memmesh.add_remote(smaller, kv=MemoryKV(cluster_id=0xBEEF), config_file=False)
    await memmesh.mirrored("c2")
    assert memmesh.remotes.connects["c2"] > connects
    assert any("cluster ID changed" in e for e in failure_errors(caplog, "c2"))
    # Same cluster ID but an empty store restarted from scratch: the revision goes backwards.
    connects = memmesh.remotes.connects["c2"]
    reset = RemoteData.sample("c2", 2, nodes=2, identities=0)
    await memmesh.add_remote(reset, kv=MemoryKV(cluster_id=0xBEEF), config_file=False)
    await memmesh.mirrored("c2")
    assert memmesh.remotes.connects["c2"] > connects
    assert any("store was reset" in e for e in failure_errors(caplog, "c2"))


async def test_stale_heartbeat_reconnects(make_memmesh: Callable[..., MemMesh],
                                          caplog: pytest.LogCaptureFixture) -> None:
    mm = make_memmesh(heartbeat_timeout=0.3)
    fresh = await mm.add_remote(RemoteData.sample("fresh", 2))
    await mm.add_remote(RemoteData.sample("stale", 3))
    await mm.start()

    async def beat() -> None:
        while True:
            await fresh.put("cilium/.heartbeat", b"now")
            await asyncio.sleep(0.05)

    beating = asyncio.create_task(beat())
    try:
        await eventually(lambda: mm.status("stale").num_failures >= 1, what="stale heartbeat detected")
        assert mm.status("fresh").num_failures == 0
        assert any("no heartbeat" in e for e in failure_errors(caplog, "stale"))
        await mm.mirrored("fresh")
        await mm.mirrored("stale")  # it keeps re-mirroring between reconnects
    finally:
        beating.cancel()


async def test_removal_drains_after_grace_and_readd_waits(make_memmesh: Callable[..., MemMesh]) -> None:
    mm = make_memmesh(drain_grace_period=0.5)
    await mm.add_remote(RemoteData.sample("c2", 2))
    await mm.add_remote(RemoteData.sample("c3", 3))
    await mm.start()
    await mm.mirrored("c2")
    await mm.mirrored("c3")
    seen_at_connect: list[dict[str, bytes]] = []
    mm.remotes.on_connect = lambda name: seen_at_connect.append(mm.view(name))
    mm.remove_config("c2")
    # The cluster config goes first; the cache stays during the grace period.
    await eventually(lambda: "cilium/cluster-config/c2" not in mm.local.snapshot(), what="config deleted")
    assert any(k.startswith("cilium/cache/nodes/v1/c2/") for k in mm.local.snapshot())
    assert [s.name for s in mm.mesh.status()] == ["c3"]
    assert mm.metric("remote_clusters") == 1
    # Re-added during the removal: queued until the drain finished, then mirrored again.
    mm.write_config("c2")
    await mm.mirrored("c2")
    assert seen_at_connect[0] == {}  # the reconnection only happened once everything was drained
    await mm.mirrored("c3")
    mm.remove_config("c3")
    await eventually(lambda: mm.status("c3") is None, what="c3 removed")
    await mm.mesh.wait_removed()
    assert mm.view("c3") == {}
    await mm.mirrored("c2")


async def test_disable_drain_keeps_the_cache(make_memmesh: Callable[..., MemMesh]) -> None:
    mm = make_memmesh(disable_drain_on_disconnection=True)
    await mm.add_remote(RemoteData.sample("c2", 2))
    await mm.start()
    await mm.mirrored("c2")
    before = mm.view("c2")
    mm.remove_config("c2")
    await eventually(lambda: mm.status("c2") is None, what="removed")
    await mm.mesh.wait_removed()
    assert mm.view("c2") == before


async def test_cache_ttl_revokes_services_only(make_memmesh: Callable[..., MemMesh]) -> None:
    mm = make_memmesh(cache_ttl=0.3)
    remote = await mm.add_remote(RemoteData.sample("c2", 2, mcs=True))
    await mm.start()
    await mm.mirrored("c2")
    mm.remotes.down.add("c2")
    remote.fail_next(2, ops={"status"})
    await eventually(lambda: not any(k.startswith(("cilium/cache/services/", "cilium/cache/serviceexports/"))
                                     for k in mm.local.snapshot()), what="services revoked")
    assert any(k.startswith("cilium/cache/nodes/v1/c2/") for k in mm.local.snapshot())
    mm.remotes.down.discard("c2")
    await mm.mirrored("c2")


async def test_config_change_reconnects_without_failure(memmesh: MemMesh) -> None:
    await memmesh.add_remote(RemoteData.sample("c2", 2))
    await memmesh.start()
    await memmesh.mirrored("c2")
    connects = memmesh.remotes.connects["c2"]
    memmesh.write_config("c2", extra="trusted-ca-file: /rotated/ca.crt\n")
    await eventually(lambda: memmesh.remotes.connects["c2"] > connects, what="reconnect")
    await memmesh.mirrored("c2")
    assert memmesh.status("c2").num_failures == 0


async def test_readiness_excludes_unreachable_and_has_a_global_timeout(
        make_memmesh: Callable[..., MemMesh]) -> None:
    mm = make_memmesh(per_cluster_ready_timeout=0.2, global_ready_timeout=60)
    mm.write_config("never")  # no etcd at all for this one
    await mm.add_remote(RemoteData.sample("c2", 2))
    await mm.start()
    await eventually(mm.mesh.ready, what="ready without the unreachable remote")
    st = mm.status("never")
    assert not st.connected and not st.ready and st.num_failures >= 1
    assert "connection refused" in st.status

    mm2 = make_memmesh(per_cluster_ready_timeout=0.2, global_ready_timeout=0.5)
    mm2.dir = mm.dir.parent / "other"
    mm2.dir.mkdir()
    # Connected, but a canary never appears: only the global timeout makes it ready.
    await mm2.add_remote(RemoteData.sample("c3", 3), with_canaries=False)
    await mm2.start()
    await asyncio.sleep(0)  # readiness must not be immediate
    assert not mm2.mesh.ready()
    await eventually(mm2.mesh.ready, what="global timeout")
    assert not mm2.status("c3").ready


async def test_restart_takes_over_the_cache_and_deletes_what_vanished(
        make_memmesh: Callable[..., MemMesh]) -> None:
    first = make_memmesh()
    remote = await first.add_remote(RemoteData.sample("c2", 2, nodes=4))
    await first.start()
    await first.mirrored("c2")
    await first.stop()  # a restart keeps the cache (no drain)
    assert first.view("c2") != {}
    await remote.delete("cilium/state/nodes/v1/c2/node-0")
    await remote.delete("cilium/state/services/v1/c2/default/svc-0")
    second = make_memmesh(local_kv=first.local, remotes=first.remotes)  # same etcds, new process
    second.data = first.data
    await second.start()
    await second.mirrored("c2")  # the leftovers of the first run are gone
