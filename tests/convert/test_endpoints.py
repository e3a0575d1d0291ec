"""CiliumEndpoint(Slice) -> cilium/state/ip/v1/default/<ip>, through IPOwnership."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from _convert_golden import insert_after, k8s_object, listing
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.convert import (
    ConversionError,
    IPOwnership,
    cilium_endpoint_ip_entries,
    cilium_endpoint_owner,
    cilium_endpoint_slice_ip_entries,
    cilium_endpoint_slice_owner,
    endpoints,
)
from apiserver.convert.endpoints import _checked_endpoint_entries, _plain_endpoint_entries
from localmesh.testing.twins import COMPILED, KINDS, compiled_module, twin

PREFIX = "cilium/state/ip/v1/default"
CEP, OVERLAP, CES = "ciliumendpoints.txtar", "ciliumendpoints-overlap.txtar", "ciliumendpointslices.txtar"

# Spec section 1.4 example, verbatim.
SPEC_EXAMPLE = {
    "10.244.1.79": b'{"IP":"10.244.1.79","Mask":null,"HostIP":"172.18.0.3","ID":199472,"Key":0,"Metadata":"",'
                   b'"K8sNamespace":"foo","K8sPodName":"cep-001","K8sServiceAccount":"default"}',
}


COMPILED_MODULE = "apiserver.convert._endpoints_c"


@pytest.fixture(params=KINDS, autouse=True)
def fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[[Any], Any]:
    """Every test of this module runs with the compiled twin of the fast path and with the pure one."""
    impl = twin(request.param, COMPILED_MODULE, "plain_endpoint_entries", _plain_endpoint_entries)
    monkeypatch.setattr(endpoints, "_plain_entries", impl)
    return impl  # type: ignore[no-any-return]


class Exporter:
    """What the exporter does with these converters: ownership, then a key/value store."""

    def __init__(self, entries: Callable[[Any], dict[str, bytes]], owner: Callable[[Any], str]) -> None:
        self.entries, self.owner = entries, owner
        self.ownership = IPOwnership()
        self.store: dict[str, bytes] = {}

    def _apply(self, upserts: dict[str, bytes], deletes: list[str]) -> None:
        for key in deletes:
            del self.store[key]
        self.store.update(upserts)

    def upsert(self, obj: dict[str, Any]) -> None:
        self._apply(*self.ownership.update(self.owner(obj), self.entries(obj)))

    def delete(self, obj: dict[str, Any]) -> None:
        self._apply(*self.ownership.remove(self.owner(obj)))


def _endpoint_1_v2() -> dict[str, Any]:
    """The golden's update: IPv4 10.244.1.79 -> 10.244.1.80, IPv6 line commented out."""
    obj = copy.deepcopy(k8s_object(CEP, "endpoint-1.yaml"))
    obj["status"]["networking"]["addressing"] = [{"ipv4": "10.244.1.80"}]
    return obj


def _later_main_to_1_19(expected: dict[str, bytes]) -> dict[str, bytes]:
    """Spec 1.4 delta: the later golden dropped ``"Mask":null`` after ``"IP"``; 1.19 writes it."""
    return {k: insert_after(v, "IP", "Mask", None) for k, v in expected.items()}


def test_golden_ciliumendpoints_sequence() -> None:
    ex = Exporter(cilium_endpoint_ip_entries, cilium_endpoint_owner)
    ep1, ep2, ep3 = (k8s_object(CEP, f"endpoint-{i}.yaml") for i in (1, 2, 3))
    ep4 = k8s_object(OVERLAP, "endpoint-4.yaml")

    def expect(txtar: str, section: str) -> dict[str, bytes]:
        got = listing(txtar, section, prefix=PREFIX)
        return _later_main_to_1_19(got) if txtar == OVERLAP else got

    ex.upsert(ep1)
    steps = [
        (ex.upsert, ep2, CEP, "ips-1+2.expected", ""),
        (ex.upsert, _endpoint_1_v2(), CEP, "ips-1+2-v2.expected", ""),
        (ex.upsert, ep3, CEP, "ips-1+2+3.expected", ""),
        (ex.delete, ep2, CEP, "ips-1+3.expected", ""),
        # Overlap steps: endpoint-4 claims endpoint-3's IPv4 address.
        (ex.upsert, ep4, OVERLAP, "ips-1+4+3.expected", "the first owner keeps the key"),
        (ex.delete, ep4, CEP, "ips-1+3.expected", ""),
        (ex.upsert, ep4, OVERLAP, "ips-1+4+3.expected", ""),
        (ex.delete, ep3, OVERLAP, "ips-1+4.expected", "the pending owner takes over"),
        (ex.upsert, ep3, OVERLAP, "ips-1+3+4.expected", "now endpoint-4 is the primary"),
        (ex.upsert, ep4, OVERLAP, "ips-1+3+4.expected", ""),
        (ex.delete, ep4, CEP, "ips-1+3.expected", ""),
        (ex.delete, ep3, OVERLAP, "ips-1.expected", "deleted only once nobody claims it"),
    ]
    for step, endpoint, txtar, section, why in steps:
        step(endpoint)
        assert ex.store == expect(txtar, section), why or section


def test_golden_ciliumendpointslices_sequence() -> None:
    ex = Exporter(cilium_endpoint_slice_ip_entries, cilium_endpoint_slice_owner)
    ex.upsert(k8s_object(CES, "endpointslice-1.yaml"))
    ex.upsert(k8s_object(CES, "endpointslice-2.yaml"))
    assert ex.store == listing(CES, "ips-1+2.expected", prefix=PREFIX)
    ex.upsert(k8s_object(CES, "endpointslice-1-v2.yaml"))
    assert ex.store == listing(CES, "ips-1+2-v2.expected", prefix=PREFIX)
    ex.upsert(k8s_object(CES, "endpointslice-3.yaml"))
    assert ex.store == listing(CES, "ips-1+2+3.expected", prefix=PREFIX)
    ex.delete(k8s_object(CES, "endpointslice-2.yaml"))
    assert ex.store == listing(CES, "ips-1+3.expected", prefix=PREFIX)


def test_spec_example() -> None:
    entries = cilium_endpoint_ip_entries(k8s_object(CEP, "endpoint-1.yaml"))
    assert {k: v for k, v in entries.items() if k in SPEC_EXAMPLE} == SPEC_EXAMPLE


def _cep(status: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "pod-1", "namespace": "ns", **meta}}
    if status is not None:
        obj["status"] = status
    return obj


def _net(*pairs: dict[str, Any], node: str = "172.18.0.3") -> dict[str, Any]:
    return {"networking": {"addressing": list(pairs), "node": node}}


def _value(ip: str, host: str = "172.18.0.3", id_: int = 0, key: int = 0, tail: str = "") -> bytes:
    return (f'{{"IP":"{ip}","Mask":null,"HostIP":"{host}","ID":{id_},"Key":{key},"Metadata":"",'
            f'"K8sNamespace":"ns","K8sPodName":"pod-1"{tail}}}').encode()


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(_cep(), {}, id="no-status"),
        pytest.param(_cep({"identity": {"id": 5}}), {}, id="no-networking"),
        pytest.param(_cep({"networking": {"addressing": []}}), {}, id="no-addresses"),
        pytest.param(_cep(_net({"ipv4": "", "ipv6": ""}, {})), {}, id="empty-addresses"),
        pytest.param(_cep(_net({"ipv4": "10.0.0.1"})), {"10.0.0.1": _value("10.0.0.1")},
                     id="no-identity-still-exported-with-id-0"),
        pytest.param(_cep({**_net({"ipv6": "FD00:0::0:1"}), "identity": {"id": 7}, "encryption": {"key": 3},
                           "service-account": "sa"}),
                     {"fd00::1": _value("fd00::1", id_=7, key=3, tail=',"K8sServiceAccount":"sa"')},
                     id="canonical-ipv6-key-identity-key-service-account"),
        pytest.param(_cep(_net({"ipv4": "::ffff:10.0.0.9"}, node="::ffff:172.18.0.3")),
                     {"10.0.0.9": _value("10.0.0.9")}, id="ipv4-mapped-written-as-ipv4"),
        pytest.param(_cep(_net({"ipv4": "10.0.0.1"}, node="not-an-ip")), {"10.0.0.1": _value("10.0.0.1", host="")},
                     id="invalid-node-ip-is-empty"),
        pytest.param(_cep(_net({"ipv4": "10.0.0.1"}, {"ipv4": "10.0.0.2"})),
                     {"10.0.0.1": _value("10.0.0.1"), "10.0.0.2": _value("10.0.0.2")}, id="several-pairs"),
        pytest.param(_cep(_net({"ipv4": "999.0.0.1", "ipv6": "fd00::2"})), {"fd00::2": _value("fd00::2")},
                     id="invalid-ip-skipped"),
        pytest.param(_cep({**_net({"ipv4": "10.0.0.1"}), "identity": {"id": (1 << 32) + 2},
                           "encryption": {"key": 258}}),
                     {"10.0.0.1": _value("10.0.0.1", id_=2, key=2)}, id="go-integer-conversions-wrap"),
    ],
)
def test_cilium_endpoint_entries(obj: dict[str, Any], expected: dict[str, bytes]) -> None:
    assert cilium_endpoint_ip_entries(obj) == expected


def test_invalid_ips_are_reported() -> None:
    skipped: list[str] = []
    cilium_endpoint_ip_entries(_cep(_net({"ipv4": "10.0.0.256", "ipv6": "fe80::1%eth0"})), skipped)
    assert len(skipped) == 2
    assert "10.0.0.256" in skipped[0]


def test_endpoint_slice_entries_omit_empty_k8s_fields_and_later_endpoint_wins() -> None:
    ces = {"metadata": {"name": "ces-1"}, "endpoints": [
        {"id": 1, "networking": {"addressing": [{"ipv4": "10.0.0.1"}]}},
        {"name": "b", "id": 2, "networking": {"addressing": [{"ipv4": "10.0.0.1"}], "node": "10.1.0.1"}},
        {"name": "c", "id": 3},
    ]}
    assert cilium_endpoint_slice_ip_entries(ces) == {
        "10.0.0.1": b'{"IP":"10.0.0.1","Mask":null,"HostIP":"10.1.0.1","ID":2,"Key":0,"Metadata":"",'
                    b'"K8sPodName":"b"}'}
    assert cilium_endpoint_slice_owner(ces) == "ces-1"


def test_owner_keys() -> None:
    assert cilium_endpoint_owner(_cep()) == "ns/pod-1"


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param(None, id="null"),
        pytest.param({"status": {}}, id="no-metadata"),
        pytest.param({"metadata": {"name": "p"}}, id="no-namespace"),
        pytest.param(_cep("running"), id="status-not-object"),  # type: ignore[arg-type]
        pytest.param(_cep({"networking": []}), id="networking-not-object"),
        pytest.param(_cep({"networking": {"addressing": {"ipv4": "10.0.0.1"}}}), id="addressing-not-array"),
        pytest.param(_cep({"networking": {"addressing": [["10.0.0.1"]]}}), id="pair-not-object"),
        pytest.param(_cep(_net({"ipv4": 167772161})), id="ip-not-string"),
        pytest.param(_cep({**_net({"ipv4": "10.0.0.1"}), "identity": {"id": "5"}}), id="identity-id-string"),
        pytest.param(_cep({**_net({"ipv4": "10.0.0.1"}), "identity": 5}), id="identity-not-object"),
        pytest.param(_cep({**_net({"ipv4": "10.0.0.1"}), "service-account": ["sa"]}), id="sa-not-string"),
    ],
)
def test_malformed_cilium_endpoints(obj: Any) -> None:
    with pytest.raises(ConversionError):
        cilium_endpoint_ip_entries(obj)


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({"endpoints": []}, id="no-metadata"),
        pytest.param({"metadata": {"name": "c"}, "endpoints": {}}, id="endpoints-not-array"),
        pytest.param({"metadata": {"name": "c"}, "namespace": 3, "endpoints": []}, id="namespace-not-string"),
        pytest.param({"metadata": {"name": "c"}, "endpoints": [{"id": 1.5}]}, id="id-float"),
        pytest.param({"metadata": {"name": "c"}, "endpoints": [{"encryption": {"key": False}}]}, id="key-bool"),
    ],
)
def test_malformed_cilium_endpoint_slices(obj: Any) -> None:
    with pytest.raises(ConversionError):
        cilium_endpoint_slice_ip_entries(obj)


# -- the fast path for the usual CiliumEndpoint -------------------------------------------------

def _mostly(valid: list[Any], odd: list[Any]) -> st.SearchStrategy[Any]:
    """Each valid value ten times as likely as an odd one: the fast path must be reached often."""
    return st.sampled_from(valid * 10 + odd)


_NAMES = _mostly(["pod-1", "ns.with.dots", "Pod_1"], ["", "a/b", "ü-pod", 'q"uote', "<b>", "x" * 254, None, 5, True])
_IDS = _mostly([None, 0, 65792, 300, -1, 2**40], [2**63, -(2**63) - 1, "5", True, 1.5])
_ADDRESSES = _mostly(["10.0.0.1", "", None, "fd00:1:0::3", "FD00::1", "::ffff:10.1.1.1"],
                     ["010.0.0.1", "fe80::1%eth0", "bad", 5])
# Missing fields read as None: required keys with None among the values cover both.
_ITEMS = st.one_of(st.fixed_dictionaries({"ipv4": _ADDRESSES, "ipv6": _ADDRESSES}),
                   st.sampled_from([None, "10.0.0.1", ["10.0.0.1"]]))
_NODES = _mostly([None, "", "172.18.0.3", "fd00::a", "::ffff:1.2.3.4"], ["bad", 7])
_NETWORKING = st.one_of(
    st.fixed_dictionaries({
        "node": _NODES,
        "addressing": st.one_of(st.lists(_ITEMS, min_size=1, max_size=3), st.sampled_from([None, "x", {}, []]))}),
    st.sampled_from([None, "x", []]))
_STATUS = st.fixed_dictionaries({
    "identity": st.one_of(st.fixed_dictionaries({"id": _IDS}), st.sampled_from([None, 5])),
    "encryption": st.one_of(st.fixed_dictionaries({"key": _IDS}), st.sampled_from([None, "x", {}])),
    "service-account": _NAMES,
    "networking": _NETWORKING,
})
_ENDPOINTS = st.one_of(
    st.fixed_dictionaries({"metadata": st.fixed_dictionaries({"name": _NAMES, "namespace": _NAMES}),
                           "status": st.one_of(_STATUS, st.sampled_from([None, "x"]))}),
    st.sampled_from([None, [], {"metadata": "x"}]))


@settings(max_examples=3000, deadline=None)
@given(_ENDPOINTS)
def test_fast_path_gives_what_the_checked_path_gives(obj: Any) -> None:
    fast = endpoints._plain_entries(obj)
    skipped: list[str] = []
    try:
        checked = _checked_endpoint_entries(obj, skipped)
    except ConversionError:
        assert fast is None  # the checked path then raises the precise error
        return
    if fast is not None:
        assert not skipped and list(fast.items()) == list(checked.items())
    assert cilium_endpoint_ip_entries(obj) == checked


def test_usual_endpoints_take_the_fast_path() -> None:
    for name in ("endpoint-1.yaml", "endpoint-2.yaml", "endpoint-3.yaml"):
        obj = k8s_object(CEP, name)
        fast = endpoints._plain_entries(obj)
        assert fast, name
        assert fast == _checked_endpoint_entries(obj, [])


@settings(max_examples=3000, deadline=None)
@given(_ENDPOINTS)
def test_compiled_twin_gives_the_pure_twins_bytes(obj: Any) -> None:
    compiled = compiled_module(COMPILED_MODULE).plain_endpoint_entries(obj)
    pure = _plain_endpoint_entries(obj)
    assert compiled == pure
    if pure is not None:
        assert list(compiled.items()) == list(pure.items())  # the same order too


@pytest.mark.parametrize("text", ["fd00::1", "::1", "::", "::ffff:10.0.0.1", "::10.0.0.1", "1::", "0:0:0:0:0:1:0:0",
                                  "FD00:0000::0:1", "1.2.3.4", "01.2.3.4", "1.2.3.256", "::ffff:0:1", "a" * 65,
                                  "1.2.3.4\x00", "fd00::1%eth0", "::ffff:1.2.3.4.5", "ff02::1:ff00:1"])
def test_compiled_twin_prints_every_address_form_as_the_pure_twin(text: str) -> None:
    obj = {"metadata": {"name": "p", "namespace": "n"},
           "status": {"networking": {"node": text, "addressing": [{"ipv4": text, "ipv6": "fd00::9"}]}}}
    assert compiled_module(COMPILED_MODULE).plain_endpoint_entries(obj) == _plain_endpoint_entries(obj)


def test_the_module_runs_both_twins(fast_path: Callable[[Any], Any], request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.params["fast_path"]
    assert (fast_path is _plain_endpoint_entries) == (kind != COMPILED)
    assert endpoints._plain_entries is fast_path
