"""The exporter end to end in one process: Kubernetes API emulator -> exporter -> real etcd."""

from __future__ import annotations

import copy

import orjson

from apiserver.convert import (
    cilium_endpoint_ip_entries,
    convert_cilium_identity,
    convert_cilium_node,
    convert_service,
)
from localmesh.testing.synthetic import (
    ClusterShape,
    cilium_endpoint,
    cilium_identity,
    cilium_node,
    endpoint_slice,
    namespace,
    service,
    synthetic_cluster,
)
from tests.clustermesh.conftest import CLUSTER, Harness, wait_for

SHAPE = ClusterShape(name="cluster1", cluster_index=1, namespaces=2, nodes=2, identities=4, endpoints=6,
                     services=2, backends_per_service=2)
CANARIES = [
    "cilium/synced/cluster1/cilium/state/nodes/v1",
    "cilium/synced/cluster1/cilium/state/identities/v1",
    "cilium/synced/cluster1/cilium/state/ip/v1",
    "cilium/synced/cluster1/cilium/state/services/v1",
    "cilium/synced/cluster1/cilium/state/serviceexports/v1",
]


def expected_state(shape: ClusterShape) -> dict[str, bytes]:
    """What the exporter must write for the synthetic cluster, computed with the converters
    (whose bytes are checked against upstream's examples in tests/convert)."""
    state: dict[str, bytes] = {}
    for i in range(shape.nodes):
        key, value = convert_cilium_node(cilium_node(shape, i), CLUSTER)
        state[f"cilium/state/nodes/v1/{key}"] = value
    for i in range(shape.identities):
        converted = convert_cilium_identity(cilium_identity(shape, i))
        assert converted is not None
        state[f"cilium/state/identities/v1/id/{converted[0]}"] = converted[1]
    for i in range(shape.endpoints):
        for ip, value in cilium_endpoint_ip_entries(cilium_endpoint(shape, i)).items():
            state[f"cilium/state/ip/v1/default/{ip}"] = value
    for i in range(shape.services):
        svc = service(shape, i)
        value = convert_service(svc, [endpoint_slice(shape, i)], CLUSTER)
        assert value is not None
        state[f"cilium/state/services/v1/cluster1/{svc['metadata']['namespace']}/svc-{i}"] = value
    return state


def seed(h: Harness, shape: ClusterShape = SHAPE) -> None:
    for obj in synthetic_cluster(shape):
        h.sim.apply(obj)


async def test_initial_export_is_complete_and_ordered(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    everything = await harness.dump()
    assert await harness.data() == expected_state(SHAPE)
    assert everything["cilium/cluster-config/cluster1"] == (
        b'{"id":1,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255,"serviceExportsEnabled":false}}')
    for canary in CANARIES:
        assert canary in everything, canary
    assert "cilium/.heartbeat" in everything
    # Order: cluster config, then data, then each canary after its own data.
    client = await harness.etcd_client()
    kvs, _ = await client.list_prefix("cilium/")
    rev = {kv.key: kv.mod_revision for kv in kvs}
    config_rev = rev["cilium/cluster-config/cluster1"]
    data_revs = [r for k, r in rev.items() if k.startswith("cilium/state/")]
    assert config_rev < min(data_revs)
    for canary in CANARIES[:4]:
        prefix = canary.removeprefix("cilium/synced/cluster1/")
        own = [r for k, r in rev.items() if k.startswith(prefix + "/")]
        assert own and rev[canary] > max(own), (canary, {k: r for k, r in rev.items() if k.startswith(prefix)})
    assert harness.exporter is not None and harness.exporter.ready()


async def test_live_add_update_delete_of_every_resource(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    sim = harness.sim
    # Node: add, update, delete.
    node = cilium_node(SHAPE, 7)
    sim.apply(node)
    await harness.wait_data(lambda d: "cilium/state/nodes/v1/cluster1/cluster1-node-7" in d, "node added")
    node = copy.deepcopy(node)
    node["spec"]["bootid"] = "changed"
    sim.apply(node)
    node_key = "cilium/state/nodes/v1/cluster1/cluster1-node-7"
    await harness.wait_data(lambda d: b'"BootID":"changed"' in d.get(node_key, b""), "node updated")
    sim.delete("cilium.io/v2", "CiliumNode", "cluster1-node-7")
    await harness.wait_data(lambda d: "cilium/state/nodes/v1/cluster1/cluster1-node-7" not in d, "node deleted")
    # Identity: delete.
    identity = cilium_identity(SHAPE, 0)
    sim.delete("cilium.io/v2", "CiliumIdentity", identity["metadata"]["name"])
    key = f"cilium/state/identities/v1/id/{identity['metadata']['name']}"
    await harness.wait_data(lambda d: key not in d, "identity deleted")
    # Endpoint: change its IPv4 address -> old key deleted, new key written.
    cep = copy.deepcopy(cilium_endpoint(SHAPE, 0))
    old_ip = cep["status"]["networking"]["addressing"][0]["ipv4"]
    cep["status"]["networking"]["addressing"][0]["ipv4"] = "10.1.200.200"
    sim.apply(cep)
    await harness.wait_data(lambda d: "cilium/state/ip/v1/default/10.1.200.200" in d
                            and f"cilium/state/ip/v1/default/{old_ip}" not in d, "endpoint IP moved")
    # Service: backends follow the EndpointSlice; losing the global annotation deletes the key.
    slc = copy.deepcopy(endpoint_slice(SHAPE, 0))
    slc["endpoints"][0]["addresses"] = ["10.1.99.99"]
    sim.apply(slc)
    svc_key = "cilium/state/services/v1/cluster1/ns-0/svc-0"
    await harness.wait_data(lambda d: b'"10.1.99.99"' in d.get(svc_key, b""), "service backends updated")
    svc = copy.deepcopy(service(SHAPE, 0))
    svc["metadata"]["annotations"] = {}
    sim.apply(svc)
    await harness.wait_data(lambda d: svc_key not in d, "non-global service deleted")
    sim.delete("v1", "Service", "svc-1", namespace="ns-1")
    await harness.wait_data(lambda d: "cilium/state/services/v1/cluster1/ns-1/svc-1" not in d, "service deleted")


async def test_namespace_filtering_follows_the_annotation(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    full = expected_state(SHAPE)

    def in_ns1(key: str, value: bytes) -> bool:
        if key.startswith("cilium/state/nodes/"):
            return False
        return b"ns-1" in value or "/ns-1/" in key

    ns1_keys = {k for k, v in full.items() if in_ns1(k, v)}
    assert ns1_keys, "the synthetic cluster must have data in ns-1"
    harness.sim.apply(namespace("ns-1", global_=False))
    await harness.wait_data(lambda d: d == {k: v for k, v in full.items() if k not in ns1_keys},
                            "ns-1 data removed, the rest intact")
    harness.sim.apply(namespace("ns-1", global_=True))
    await harness.wait_data(lambda d: d == full, "ns-1 data back")


async def test_default_non_global_namespaces(harness: Harness) -> None:
    seed(harness)
    harness.sim.apply(namespace("ns-0", global_=True))
    await harness.start(default_global_namespace=False)
    data = await harness.data()
    assert any(k.startswith("cilium/state/nodes/") for k in data)  # nodes are not namespaced
    assert "cilium/state/services/v1/cluster1/ns-0/svc-0" in data
    assert "cilium/state/services/v1/cluster1/ns-1/svc-1" not in data


async def test_ip_claimed_twice_is_handed_over(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    first = copy.deepcopy(cilium_endpoint(SHAPE, 0))
    second = copy.deepcopy(cilium_endpoint(SHAPE, 1))
    shared_ip = first["status"]["networking"]["addressing"][0]["ipv4"]
    second["status"]["networking"]["addressing"][0]["ipv4"] = shared_ip
    harness.sim.apply(second)
    key = f"cilium/state/ip/v1/default/{shared_ip}"
    first_value = cilium_endpoint_ip_entries(first)[shared_ip]
    second_value = cilium_endpoint_ip_entries(second)[shared_ip]
    await harness.wait_data(lambda d: d.get(key) == first_value, "first owner keeps the key")
    harness.sim.delete("cilium.io/v2", "CiliumEndpoint", first["metadata"]["name"],
                       namespace=first["metadata"]["namespace"])
    await harness.wait_data(lambda d: d.get(key) == second_value, "key handed to the second owner")
    harness.sim.delete("cilium.io/v2", "CiliumEndpoint", second["metadata"]["name"],
                       namespace=second["metadata"]["namespace"])
    await harness.wait_data(lambda d: key not in d, "key deleted once nobody claims it")


async def test_lost_lease_rewrites_every_key(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    full = await harness.dump()
    client = await harness.etcd_client()
    kvs, _ = await client.list_prefix("cilium/state/")
    for lease in {kv.lease for kv in kvs}:
        assert lease != 0, "every exported key carries a lease"
        await client.revoke_lease(lease)
    await harness.wait_data(lambda d: d == {k: v for k, v in full.items() if k.startswith("cilium/state/")},
                            "keys written again after their lease was revoked", timeout=20)

    async def canaries_back() -> bool:
        everything = await harness.dump()
        return all(c in everything for c in CANARIES)

    await wait_for(canaries_back, 20, "canaries written again")


async def test_stale_keys_of_a_previous_run_are_deleted(harness: Harness) -> None:
    client = await harness.etcd_client()
    stale = {
        "cilium/state/nodes/v1/cluster1/gone-node": b"{}",
        "cilium/state/identities/v1/id/99999": b"k8s:app=gone;",
        "cilium/state/ip/v1/default/10.9.9.9": b"{}",
        "cilium/state/services/v1/cluster1/ns-0/gone": b"{}",
    }
    foreign = {"cilium/state/nodes/v1/other-cluster/n1": b"{}"}
    for key, value in {**stale, **foreign}.items():
        await client.put(key, value)
    seed(harness)
    await harness.start()

    def converged(d: dict[str, bytes]) -> bool:
        return not set(stale) & set(d) and all(d.get(k) == v for k, v in foreign.items())

    await harness.wait_data(converged, "stale keys removed, foreign keys kept")
    data = await harness.data()
    assert {k: v for k, v in data.items() if k not in foreign} == expected_state(SHAPE)
    assert harness.metrics is not None
    removed = sum(s.value for m in harness.metrics.stale_keys_deleted_total.collect() for s in m.samples
                  if s.name.endswith("_total"))
    assert removed == len(stale)


async def test_relist_after_expired_watch_leaves_no_stale_keys(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    sim = harness.sim
    sim.faults.pause()
    sim.faults.close_watches()
    # Changes the exporter cannot see as watch events: the history is compacted away.
    sim.delete("cilium.io/v2", "CiliumNode", "cluster1-node-1")
    sim.delete("cilium.io/v2", "CiliumEndpoint", "pod-2", namespace="ns-0")
    sim.apply(cilium_node(SHAPE, 5))
    sim.faults.compact()
    sim.faults.resume()
    shape_after = {k: v for k, v in expected_state(SHAPE).items()
                   if k != "cilium/state/nodes/v1/cluster1/cluster1-node-1"
                   and k not in {f"cilium/state/ip/v1/default/{ip}"
                                 for ip in cilium_endpoint_ip_entries(cilium_endpoint(SHAPE, 2))}}
    key, value = convert_cilium_node(cilium_node(SHAPE, 5), CLUSTER)
    shape_after[f"cilium/state/nodes/v1/{key}"] = value
    await harness.wait_data(lambda d: d == shape_after, "state after relist", timeout=20)


async def test_malformed_objects_are_skipped_and_counted(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    bad = copy.deepcopy(cilium_endpoint(SHAPE, 9))
    bad["status"]["networking"]["addressing"] = [{"ipv4": "not-an-ip"}]
    harness.sim.apply(bad)
    bad_node = copy.deepcopy(cilium_node(SHAPE, 0))
    bad_node["spec"]["addresses"] = "garbage"
    harness.sim.apply(bad_node)
    good = cilium_node(SHAPE, 6)
    harness.sim.apply(good)
    await harness.wait_data(lambda d: "cilium/state/nodes/v1/cluster1/cluster1-node-6" in d, "good node exported")
    assert harness.metrics is not None

    def skipped() -> float:
        assert harness.metrics is not None
        return sum(s.value for m in harness.metrics.malformed_objects_total.collect() for s in m.samples
                   if s.name.endswith("_total"))

    async def counted() -> bool:
        return skipped() >= 2  # the endpoint's bad address and the node

    await wait_for(counted, 10, "malformed objects counted")
    data = await harness.data()
    # The node keeps its last good value; nothing else was touched.
    expected = expected_state(SHAPE)
    for k, v in expected.items():
        assert data.get(k) == v, k
    assert not any("not-an-ip" in k for k in data)


async def test_mcs_api_service_exports(harness: Harness) -> None:
    seed(harness)
    harness.sim.apply({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": "svc-0", "namespace": "ns-0", "creationTimestamp": "2026-01-01T00:00:00Z"},
    })
    await harness.start(enable_mcs_api=True)
    everything = await harness.dump()
    assert b'"serviceExportsEnabled":true' in everything["cilium/cluster-config/cluster1"]
    key = "cilium/state/serviceexports/v1/cluster1/ns-0/svc-0"
    value = orjson.loads(everything[key])
    assert value["cluster"] == "cluster1" and value["name"] == "svc-0" and value["type"] == "ClusterSetIP"
    harness.sim.delete("multicluster.x-k8s.io/v1alpha1", "ServiceExport", "svc-0", namespace="ns-0")
    await harness.wait_data(lambda d: key not in d, "service export removed")


async def test_stop_finishes_queued_writes(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    for i in range(20, 60):
        harness.sim.apply(cilium_node(SHAPE, i))
    await harness.wait_data(lambda d: "cilium/state/nodes/v1/cluster1/cluster1-node-59" in d, "nodes written")
    await harness.stop()
    data = await harness.data()
    assert sum(1 for k in data if k.startswith("cilium/state/nodes/v1/cluster1/")) == SHAPE.nodes + 40


async def test_a_namespace_flip_is_applied_even_if_rereading_it_fails_at_first(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    full = expected_state(SHAPE)
    ns1_endpoint_keys = {k for k, v in full.items()
                         if k.startswith("cilium/state/ip/") and b'"K8sNamespace":"ns-1"' in v}
    assert ns1_endpoint_keys
    harness.sim.faults.fail("ciliumendpoints", 503, count=2, verbs=("list",))
    harness.sim.apply(namespace("ns-1", global_=False))
    await harness.wait_data(lambda d: not ns1_endpoint_keys & d.keys(), "ns-1 endpoints removed after retries")
    assert harness.sim.request_counts["list", "ciliumendpoints"] >= 4  # initial list, 2 failures, 1 success
