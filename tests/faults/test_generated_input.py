"""Generated bad input (hypothesis) through the whole pipeline: the emulator, the exporter as its own
process, a real etcd. Each example applies mutated objects of every kind the exporter reads
(CiliumNodes, CiliumIdentities, CiliumEndpoints, Services with EndpointSlices, Namespaces: wrong
types, fields removed, bad or duplicate IPs, huge label sets, unicode and control characters), a
twin claiming the IPs of an exported endpoint and, in some examples, a global Service whose value
exceeds etcd's request limit, mixed with good objects. Then:

- the exporter process is alive, ready, and logged no handler failure;
- etcd equals what ``clustermesh-dbg verify`` computes from the API server, and every good object's
  keys hold the converters' bytes;
- every object a converter refuses is named in a ``Skipping object that cannot be exported`` line,
  and ``malformed_objects_total`` grew by exactly one per such line;
- the oversized Service is refused and counted in ``kvstore_values_too_large_total``;
- after the example's objects are removed, etcd holds exactly what it held before (nothing that was
  exported before was corrupted).

One etcd and one exporter serve the whole module; examples are derandomized (CI reproducible).
"""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from apiserver.convert import (
    ConversionError,
    cilium_endpoint_ip_entries,
    convert_cilium_identity,
    convert_cilium_node,
    convert_service,
    endpoint_slice_service,
    identity_namespace,
)
from localmesh.kubesim import KubeError, KubeSim
from localmesh.testing import synthetic as syn
from localmesh.testing.etcd import EtcdServer
from tests.convert.test_bad_input_properties import mutated
from tests.faults.harness import CLUSTER, ExporterProcess, World, poll, seed_objects

SHAPE = syn.ClusterShape(name="cluster1", namespaces=2, nodes=2, identities=4, endpoints=10, services=2)
SKIP_LINE = "Skipping object that cannot be exported"
ETCD_LIMIT = 1536 * 1024  # etcd's default --max-request-bytes
COVERED: Counter[str] = Counter()  # what the examples drew, checked by the last test
_examples = itertools.count()


@dataclass
class Example:
    """The objects one example applied: (api_version, kind, namespace, name) -> object."""

    applied: dict[tuple[str, str, str, str], dict[str, Any]] = field(default_factory=dict)
    good: list[dict[str, Any]] = field(default_factory=list)
    mutated: list[dict[str, Any]] = field(default_factory=list)


class Pipeline:
    def __init__(self, world: World, exporter: ExporterProcess, baseline: dict[str, bytes]) -> None:
        self.world = world
        self.exporter = exporter
        self.baseline = baseline

    @property
    def sim(self) -> KubeSim:
        return self.world.sim

    def put(self, obj: dict[str, Any], example: Example) -> None:
        """Apply through the emulator's validation; what it refuses for its body (not its metadata)
        is written to its store as is (an API server without the CRD's schema, an object stored
        before a validation existed); what no API server stores never reaches the exporter."""
        try:
            orjson.dumps(obj)
        except TypeError:
            return  # e.g. an integer beyond 64 bits: no API server serves it
        rt = self.sim.registry.by_kind(obj["apiVersion"], obj["kind"])
        assert rt is not None
        try:
            stored = self.sim.apply(obj)
            meta = stored["metadata"]
            key = (str(meta.get("namespace") or ""), str(meta["name"]))
        except KubeError:
            meta = obj.get("metadata")
            if not isinstance(meta, dict) or not _valid_metadata(meta):
                return  # every API server validates metadata, of every kind
            raw = orjson.loads(orjson.dumps(obj))
            if rt.namespaced:
                raw["metadata"]["namespace"] = raw["metadata"].get("namespace") or "default"
            else:
                raw["metadata"].pop("namespace", None)
            key = self.sim.store.write(rt, raw).key
        example.applied[(rt.api_version, rt.kind, *key)] = obj

    def remove(self, example: Example) -> None:
        for api_version, kind, ns, name in example.applied:
            rt = self.sim.registry.by_kind(api_version, kind)
            assert rt is not None
            self.sim.store.remove(rt, (ns, name))

    async def metric_by_resource(self, name: str, label: str) -> Counter[str]:
        counts: Counter[str] = Counter()
        for line in (await self.exporter.metrics()).splitlines():
            if line.startswith(f"cilium_clustermesh_apiserver_{name}_total{{"):
                labels, _, value = line.rpartition(" ")
                resource = labels.split(f'{label}="', 1)[1].split('"', 1)[0]
                counts[resource] += int(float(value))
        return counts

    def log_records(self, offset: int) -> list[dict[str, Any]]:
        records = []
        for line in self.exporter.logs()[offset:].splitlines():
            if line.startswith("{"):
                records.append(orjson.loads(line))
        return records

    async def converged(self, what: str, too_large: frozenset[str] = frozenset()) -> None:
        """Ready, and etcd equal to what verify computes, except for the keys whose value etcd
        cannot take: those etcd does not have (or has as before)."""
        last = ["not ready"]

        async def equal() -> bool:
            if not await self.exporter.ready():
                last[0] = "not ready"
                return False
            report = await self.world.drift()
            last[0] = report.text()
            drift = {k for p in report.prefixes for k in (*p.missing, *p.differing)}
            return (not report.problems and drift == set(too_large)
                    and not any(p.stale for p in report.prefixes))

        try:
            await poll(equal, what, deadline=60)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{last[0]}\n{self.exporter.logs()[-3000:]}") from None

    async def data(self) -> dict[str, bytes]:
        client = await self.world.etcd_client()
        try:
            kvs, _ = await client.list_prefix("cilium/state/")
            return {kv.key: kv.value for kv in kvs}
        finally:
            await client.close()


@pytest.fixture(scope="module")
def module_etcd() -> Iterator[EtcdServer]:
    with EtcdServer(name="generated-input") as srv:
        yield srv


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pipeline(module_etcd: EtcdServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Pipeline]:
    sim = KubeSim()
    await sim.start(host="127.0.0.1", port=0)
    world = World(tmp_path_factory.mktemp("generated-input"), sim, module_etcd)
    try:
        seed_objects(sim, syn.synthetic_cluster(SHAPE))
        exporter = world.exporter("--log-opt=format=json")
        await exporter.start()
        p = Pipeline(world, exporter, {})
        await p.converged("initial export")
        p.baseline = await p.data()
        yield p
    finally:
        await world.close()
        await sim.stop()


def _string_map(value: Any) -> bool:
    return value is None or (isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                             for k, v in value.items()))


def _valid_metadata(meta: dict[str, Any]) -> bool:
    name, ns = meta.get("name"), meta.get("namespace")
    return (isinstance(name, str) and bool(name) and (ns is None or isinstance(ns, str))
            and _string_map(meta.get("labels")) and _string_map(meta.get("annotations")))


# -- the objects of one example -------------------------------------------------------------------

def _objects(n: int, first: int, count: int) -> list[dict[str, Any]]:
    """Good objects of every kind (names, IPs and IDs no other example uses)."""
    objects: list[dict[str, Any]] = []
    for i in range(1000 + 8 * n + first, 1000 + 8 * n + first + count):
        objects += [syn.cilium_node(SHAPE, i), syn.cilium_identity(SHAPE, i), syn.cilium_endpoint(SHAPE, i),
                    syn.service(SHAPE, i), syn.endpoint_slice(SHAPE, i)]
    return objects


def _good(n: int) -> list[dict[str, Any]]:
    gen_ns = syn.namespace(f"gen-{n}", global_=True)
    in_gen = syn.cilium_endpoint(SHAPE, 1000 + 8 * n + 4)
    in_gen["metadata"]["namespace"] = gen_ns["metadata"]["name"]
    return [gen_ns, in_gen, *_objects(n, 0, 2)]


def _templates(n: int) -> list[dict[str, Any]]:
    """What the bad objects are mutated from: objects of their own (other names and IPs), except
    that their EndpointSlices belong to the good Services (a bad slice must not spoil its service)."""
    templates = _objects(n, 2, 2)
    for j, obj in enumerate(o for o in templates if o["kind"] == "EndpointSlice"):
        obj["metadata"]["labels"]["kubernetes.io/service-name"] = f"svc-{1000 + 8 * n + j}"
        obj["metadata"]["namespace"] = f"ns-{(1000 + 8 * n + j) % SHAPE.namespaces}"
    return [syn.namespace(f"gen-{n}-bad", global_=True), *templates]


def _oversized(n: int) -> list[dict[str, Any]]:
    """A global Service whose value exceeds etcd's request limit: four slices of 1,000 backends
    with long hostnames (each slice is a fine Kubernetes object; their join is not)."""
    svc = syn.service(SHAPE, 1000 + 8 * n + 5)
    name, ns = svc["metadata"]["name"], svc["metadata"]["namespace"]
    slices = []
    for s in range(4):
        slice_ = syn.endpoint_slice(SHAPE, 0)
        slice_["metadata"].update(name=f"{name}-big{s}", namespace=ns)
        slice_["metadata"]["labels"]["kubernetes.io/service-name"] = name
        slice_["endpoints"] = [{"addresses": [f"10.{100 + s}.{i // 250}.{i % 250 + 1}"], "conditions": {"ready": True},
                                "hostname": f"h{i}-" + "x" * 400} for i in range(1000)]
        slices.append(slice_)
    return [svc, *slices]


def _twin(n: int) -> dict[str, Any]:
    """Another endpoint claiming the IPs of an exported one: the first owner keeps them."""
    twin = syn.cilium_endpoint(SHAPE, n % SHAPE.endpoints)
    twin["metadata"]["name"] = f"twin-{n}"
    twin["status"]["id"] = 9999
    return twin


@st.composite
def example_input(draw: st.DrawFn) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]], bool]:
    n = next(_examples)
    bad = []
    for template in draw(st.lists(st.sampled_from(_templates(n)), min_size=1, max_size=6, unique_by=id)):
        obj = draw(mutated(template), label=template["kind"])
        # The API server's path names the kind, and it serves every object with it.
        obj.update(apiVersion=template["apiVersion"], kind=template["kind"])
        meta = obj.get("metadata")
        if not (isinstance(meta, dict) and _valid_metadata(meta)) and draw(st.integers(0, 3)):
            # Mostly keep metadata an API server accepts, so that the rest reaches the exporter.
            obj["metadata"] = copy.deepcopy(template["metadata"])
        bad.append(obj)
    return n, _good(n), bad, draw(st.integers(0, 3)) == 0


def _refused(obj: dict[str, Any], context: list[dict[str, Any]]) -> bool:
    """Whether the exporter must skip ``obj`` with a log line (the converters say it is malformed)."""
    try:
        kind = obj["kind"]
        if kind == "CiliumNode":
            convert_cilium_node(obj, CLUSTER)
        elif kind == "CiliumIdentity":
            return convert_cilium_identity(obj) is None or identity_namespace(obj) is None
        elif kind == "CiliumEndpoint":
            skipped: list[str] = []
            cilium_endpoint_ip_entries(obj, skipped)
            return bool(skipped)
        elif kind == "Service":
            convert_service(obj, [], CLUSTER)
        elif kind == "EndpointSlice":
            owner = endpoint_slice_service(obj)
            for svc in context:
                if svc["kind"] == "Service" and owner == f"{svc['metadata']['namespace']}/{svc['metadata']['name']}":
                    convert_service(svc, [obj], CLUSTER)
        return False
    except ConversionError:
        return True


def _good_keys(good: list[dict[str, Any]], accepted: list[dict[str, Any]]) -> dict[str, bytes]:
    """The converters' keys and bytes for the good objects of the exported namespaces; a good
    Service's backends come from its slices and the bad slices the converters ``accepted``."""
    keys: dict[str, bytes] = {}
    slices = sorted((o for o in [*good, *accepted] if o["kind"] == "EndpointSlice"),
                    key=lambda o: str(o["metadata"]["name"]))
    for obj in good:
        kind, ns = obj["kind"], obj["metadata"].get("namespace", "")
        if ns.startswith("gen-"):
            continue  # exported or not as its namespace says: verify decides
        if kind == "CiliumNode":
            key, value = convert_cilium_node(obj, CLUSTER)
            keys[f"cilium/state/nodes/v1/{key}"] = value
        elif kind == "CiliumIdentity":
            converted = convert_cilium_identity(obj)
            assert converted is not None
            keys[f"cilium/state/identities/v1/id/{converted[0]}"] = converted[1]
        elif kind == "CiliumEndpoint":
            for ip, value in cilium_endpoint_ip_entries(obj).items():
                keys[f"cilium/state/ip/v1/default/{ip}"] = value
        elif kind == "Service":
            converted_service = convert_service(obj, slices, CLUSTER)
            assert converted_service is not None
            keys[f"cilium/state/services/v1/{CLUSTER.name}/{ns}/{obj['metadata']['name']}"] = converted_service
    return keys


# No shrinking: each example costs seconds of real processes; the failing one is printed as drawn.
@settings(max_examples=40, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(drawn=example_input())
@pytest.mark.asyncio(loop_scope="module")
async def test_generated_bad_input_is_skipped_counted_and_holds_nothing_back(
        pipeline: Pipeline, drawn: tuple[int, list[dict[str, Any]], list[dict[str, Any]], bool]) -> None:
    n, good, bad, oversized = drawn
    p, example = pipeline, Example(good=good, mutated=bad)
    log_offset = len(p.exporter.logs())
    malformed_before = await p.metric_by_resource("malformed_objects", "resource")
    too_large_before = sum((await p.metric_by_resource("kvstore_values_too_large", "scope")).values())
    extra = [_twin(n), *(_oversized(n) if oversized else [])]
    for obj in [*good, *bad, *extra]:
        p.put(obj, example)
    big = frozenset({f"cilium/state/services/v1/{CLUSTER.name}/{extra[1]['metadata']['namespace']}/"
                     f"{extra[1]['metadata']['name']}"} if oversized else ())
    try:
        await p.converged(f"example {n}: verify equal", big)
        data = await p.data()
        context = good
        applied_bad = [obj for obj in example.applied.values() if any(obj is b for b in bad)]
        accepted = [obj for obj in applied_bad if not _refused(obj, context)]
        for key, value in _good_keys(good, accepted).items():
            assert data.get(key) == value, f"good object's key {key}: {data.get(key)!r} != {value!r}"
        for key, value in p.baseline.items():
            assert data.get(key) == value, f"exported before, then changed: {key}"
        if oversized:
            for key in big & data.keys():  # a value it had before: well-formed, of this service
                assert orjson.loads(data[key])["name"] == extra[1]["metadata"]["name"]
            assert len(convert_service(extra[1], extra[2:], CLUSTER) or b"") > ETCD_LIMIT

            async def counted() -> bool:
                total = sum((await p.metric_by_resource("kvstore_values_too_large", "scope")).values())
                return total > too_large_before

            await poll(counted, "the oversized service counted", deadline=60)
            COVERED["oversized"] += 1
        records = p.log_records(log_offset)
        failures = [r for r in records if (r.get("level") == "error" or "error" in r)
                    and not (r.get("msg", "").startswith("Value too large") and r.get("key") in big)]
        assert not failures, failures[:3]
        skipped = [r for r in records if r.get("msg") == SKIP_LINE]
        named = {r.get("object") for r in skipped}
        for (_, kind, ns, name), obj in example.applied.items():
            if any(obj is b for b in bad) and ns in ("", "ns-0", "ns-1") and _refused(obj, context):
                assert (f"{ns}/{name}" if ns else name) in named, f"{kind} {ns}/{name}: no skip line"
                COVERED[kind] += 1
        malformed_after = await p.metric_by_resource("malformed_objects", "resource")
        assert malformed_after - malformed_before == Counter(r["resource"] for r in skipped)
        assert p.exporter.running
    finally:
        p.remove(example)
    await p.converged(f"example {n}: back to the baseline")
    assert await p.data() == p.baseline


def test_the_examples_covered_every_kind_of_bad_input() -> None:
    print("generated input covered:", dict(COVERED))
    assert COVERED["oversized"] >= 1, COVERED
    for kind in ("CiliumNode", "CiliumIdentity", "CiliumEndpoint", "Service", "EndpointSlice"):
        assert COVERED[kind] >= 1, (kind, COVERED)
