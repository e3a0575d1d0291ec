"""RemoteCluster JSON (go-swagger layout) and the kvstoremesh-dbg text rendering."""

from __future__ import annotations

import datetime as dt

import orjson

from apiserver.kvstoremesh import (
    RemoteClusterConfigStatus,
    RemoteClusterStatus,
    RemoteClusterSyncedStatus,
    format_status,
    render_clusters,
    status_from_json,
    status_to_json,
)
from apiserver.kvstoremesh._status import go_duration

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)


def ready_cluster() -> RemoteClusterStatus:
    return RemoteClusterStatus(
        name="c2", connected=True, ready=True, status="etcd: 1/1 connected: 3.4.23, ID: 1c",
        num_failures=2, last_failure=NOW - dt.timedelta(seconds=75), num_nodes=3, num_shared_services=1,
        num_identities=4, num_endpoints=5,
        config=RemoteClusterConfigStatus(required=True, retrieved=True, cluster_id=2, sync_canaries=True,
                                         service_exports_enabled=False),
        synced=RemoteClusterSyncedStatus(nodes=True, services=True, identities=True, endpoints=True,
                                         service_exports=True))


def test_json_layout_is_byte_exact() -> None:
    never = RemoteClusterStatus(name="c3", status="Waiting for initial connection to be established",
                                synced=RemoteClusterSyncedStatus())
    assert render_clusters([ready_cluster(), never]) == (
        b'[{"config":{"cluster-id":2,"required":true,"retrieved":true,"service-exports-enabled":false,'
        b'"sync-canaries":true},"connected":true,"last-failure":"2026-01-01T11:58:45.000Z","name":"c2",'
        b'"num-endpoints":5,"num-failures":2,"num-identities":4,"num-nodes":3,"num-shared-services":1,'
        b'"ready":true,"status":"etcd: 1/1 connected: 3.4.23, ID: 1c","synced":{"endpoints":true,'
        b'"identities":true,"nodes":true,"service-exports":true,"services":true}},'
        b'{"last-failure":"0001-01-01T00:00:00.000Z","name":"c3",'
        b'"status":"Waiting for initial connection to be established","synced":{}}]')
    assert render_clusters([]) == b"[]"


def test_json_round_trip() -> None:
    original = ready_cluster()
    assert status_from_json(orjson.loads(orjson.dumps(status_to_json(original)))) == original


def test_text_brief_and_verbose() -> None:
    not_ready = RemoteClusterStatus(
        name="c3", status="connection refused", num_failures=1, last_failure=NOW - dt.timedelta(hours=1, seconds=2),
        config=RemoteClusterConfigStatus(required=True), synced=RemoteClusterSyncedStatus())
    clusters = [ready_cluster(), not_ready]
    assert format_status(clusters, now=NOW) == (
        "KVStoreMesh:\t1/2 clusters ready\n"
        "   c2: ready, 3 nodes, 5 endpoints, 4 identities, 1 services, 2 failures (last: 1m15s ago)\n"
        "   c3: not-ready, 0 nodes, 0 endpoints, 0 identities, 0 services, 1 failures (last: 1h0m2s ago)\n"
        "   └  connection refused\n"
        "   └  remote configuration: expected=true, retrieved=false\n"
        "   └  synchronization status: nodes=false, endpoints=false, identities=false, services=false\n")
    verbose = format_status([ready_cluster()], verbose=True, now=NOW)
    assert "   └  remote configuration: expected=true, retrieved=true, cluster-id=2, kvstoremesh=false, " \
           "sync-canaries=true\n" in verbose
    assert format_status([RemoteClusterStatus(name="x")], now=NOW).splitlines()[1].endswith("(last: never)")


def test_go_duration() -> None:
    assert [go_duration(s) for s in (0, 5, 60, 61, 3600, 3723)] == ["0s", "5s", "1m0s", "1m1s", "1h0m0s", "1h2m3s"]
