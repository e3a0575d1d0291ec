"""Bad input through the whole pipeline (emulator -> exporter -> etcd): objects with wrong types,
bad and duplicate IPs, control characters, huge label sets, and a global Service whose value would
exceed etcd's request limit, among good ones. Never a crash; each skipped object logged and
counted; the good objects, and what was exported before, intact; ready."""

from __future__ import annotations

import copy
from typing import Any

from apiserver.convert import cilium_endpoint_ip_entries, convert_service
from localmesh.testing.synthetic import ClusterShape, cilium_endpoint, cilium_identity, endpoint_slice, service
from tests.clustermesh.conftest import CLUSTER, Harness, wait_for
from tests.clustermesh.test_exporter import SHAPE, expected_state, seed


def _bad_endpoints() -> list[dict[str, Any]]:
    shape = ClusterShape(name="cluster1", cluster_index=1, namespaces=2, endpoints=200)
    bad = []
    for i, mutate in enumerate([
        lambda o: o["status"].__setitem__("networking", "not-an-object"),
        lambda o: o["status"]["networking"].__setitem__("addressing", [{"ipv4": "999.1.1.1"}]),
        lambda o: o["status"]["networking"].__setitem__("addressing", [{"ipv4": "10.1.0.1\x00"}]),
        lambda o: o["status"].__setitem__("identity", {"id": "seven"}),
        lambda o: o["status"]["networking"].__setitem__("node", ["\n", 1]),
    ]):
        obj = copy.deepcopy(cilium_endpoint(shape, 100 + i))
        mutate(obj)
        bad.append(obj)
    return bad


def _counted(h: Harness, resource: str = "") -> float:
    assert h.metrics is not None
    return sum(sample.value for metric in h.metrics.malformed_objects_total.collect()
               for sample in metric.samples if sample.name.endswith("_total")
               and (not resource or sample.labels["resource"] == resource))


async def test_bad_objects_are_skipped_counted_and_hold_nothing_back(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    before = await harness.data()
    assert before == expected_state(SHAPE)
    for obj in _bad_endpoints():
        harness.sim.apply(obj)
    # A duplicate IP: a second endpoint claiming the IP of an exported one (first owner keeps it).
    twin = copy.deepcopy(cilium_endpoint(SHAPE, 0))
    twin["metadata"]["name"] = "twin"
    harness.sim.apply(twin)
    # Huge label set and unicode on a service; a global service too large for etcd.
    svc = service(SHAPE, 1)
    svc["metadata"]["labels"] = {f"l{i}": "\u00e9" * 40 for i in range(2000)}
    harness.sim.apply(svc)
    big = endpoint_slice(SHAPE, 0)
    big["metadata"]["name"] = "svc-0-huge"
    big["endpoints"] = [{"addresses": [f"10.200.{i // 250}.{i % 250 + 1}"], "conditions": {"ready": True}}
                        for i in range(40_000)]
    harness.sim.apply(big)
    # A good object after all of them still arrives.
    shape = ClusterShape(name="cluster1", cluster_index=1, namespaces=2, endpoints=300)
    good = cilium_endpoint(shape, 250)
    harness.sim.apply(good)
    good_keys = {f"cilium/state/ip/v1/default/{ip}": v for ip, v in cilium_endpoint_ip_entries(good).items()}

    async def good_exported() -> bool:
        data = await harness.data()
        return all(data.get(k) == v for k, v in good_keys.items())

    await wait_for(good_exported, 60, "the good endpoint exported after the bad ones")
    assert harness.exporter is not None and harness.exporter.ready()
    data = await harness.data()
    # Nothing already exported was corrupted: the twin did not take endpoint 0's IPs.
    for key, value in before.items():
        if key.startswith("cilium/state/ip/"):
            assert data[key] == value, key
    assert _counted(harness) >= 1  # the malformed endpoints were counted

    async def oversized_refused() -> bool:
        assert harness.metrics is not None
        return any(sample.value >= 1 for metric in harness.metrics.kvstore_values_too_large_total.collect()
                   for sample in metric.samples if sample.name.endswith("_total"))

    await wait_for(oversized_refused, 60, "the oversized service refused and counted")
    assert harness.exporter.ready()


async def test_a_malformed_slice_holds_back_neither_its_service_nor_its_other_slices(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    svc = service(SHAPE, 0)
    key = f"cilium/state/services/v1/cluster1/{svc['metadata']['namespace']}/svc-0"
    bad = endpoint_slice(SHAPE, 0)
    bad["metadata"]["name"] = "svc-0-bad"
    bad["endpoints"][0]["conditions"] = "ready"
    harness.sim.apply(bad)
    more = endpoint_slice(SHAPE, 0)
    more["metadata"]["name"] = "svc-0-more"
    more["endpoints"] = [{"addresses": ["10.1.250.1"], "conditions": {"ready": True}}]
    harness.sim.apply(more)
    expected = convert_service(svc, [endpoint_slice(SHAPE, 0), more], CLUSTER)
    assert expected is not None and b"10.1.250.1" in expected
    await harness.wait_data(lambda data: data.get(key) == expected, "the service with its good slices", 30)
    assert _counted(harness, "endpointslices") >= 1


async def test_identities_without_labels_are_skipped_and_counted(harness: Harness) -> None:
    seed(harness)
    await harness.start()
    no_labels = cilium_identity(SHAPE, 50)
    del no_labels["security-labels"]
    no_namespace = cilium_identity(SHAPE, 51)
    del no_namespace["security-labels"]["k8s:io.kubernetes.pod.namespace"]
    harness.sim.apply(no_labels)
    harness.sim.apply(no_namespace)

    async def counted() -> bool:
        return _counted(harness, "ciliumidentities") >= 2

    await wait_for(counted, 30, "both identities counted as skipped")
    assert harness.exporter is not None and harness.exporter.ready()
