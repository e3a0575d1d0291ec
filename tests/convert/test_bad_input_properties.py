"""Bad input, property-based: valid objects of every kind, then any field replaced by any JSON value
(wrong types, nulls, unicode and control characters, huge label sets, bad or duplicate IPs) or
removed. Every converter either returns well-formed bytes -- the same for the same input -- or
raises ``ConversionError``; never anything else."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert import (
    ConversionError,
    cilium_endpoint_ip_entries,
    convert_cilium_identity,
    convert_cilium_node,
    convert_service,
    convert_service_export,
)
from localmesh.testing.synthetic import (
    ClusterShape,
    cilium_endpoint,
    cilium_identity,
    cilium_node,
    endpoint_slice,
    service,
)

CLUSTER = ClusterInfo("cluster1", 1)
SHAPE = ClusterShape()

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "\x00", "\n", "10.0.0.1", "fd00::1", "::", "999.1.1.1", "10.0.0.1/24", "k8s:app=x;", "é" * 3])
_scalars = st.none() | st.booleans() | st.integers(-2**63, 2**64) | st.floats(allow_nan=False) | _text
JSON = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
                    max_leaves=12)
_huge_labels = st.integers(300, 1200).map(lambda n: {f"label-{i}": "v" * 50 for i in range(n)})


def _slots(obj: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) of a decoded JSON document."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            out.append((obj, key))
            _slots(value, out)
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            out.append((obj, index))
            _slots(value, out)
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(obj, [])
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        action = draw(st.sampled_from(["replace", "remove", "labels", "duplicate"]))
        if action == "remove":
            del container[key]
        elif action == "labels" and isinstance(container, dict):
            container[key] = draw(_huge_labels)
        elif action == "duplicate" and isinstance(container, list) and container:
            container.append(copy.deepcopy(container[0]))
        else:
            container[key] = draw(JSON)
    return obj


def _check_bytes(value: bytes) -> None:
    assert isinstance(value, bytes)
    if value[:1] in (b"{", b"["):
        orjson.loads(value)  # well-formed JSON


def _node(obj: dict[str, Any]) -> object:
    key, value = convert_cilium_node(obj, CLUSTER)
    assert isinstance(key, str) and key
    _check_bytes(value)
    return key, value


def _identity(obj: dict[str, Any]) -> object:
    result = convert_cilium_identity(obj)
    if result is not None:
        assert isinstance(result[0], str) and result[0]
        _check_bytes(result[1])
    return result


def _endpoint(obj: dict[str, Any]) -> object:
    entries = cilium_endpoint_ip_entries(obj)
    for ip, value in entries.items():
        assert isinstance(ip, str) and ip
        _check_bytes(value)
    return entries


def _service(obj: dict[str, Any]) -> object:
    value = convert_service(obj, [endpoint_slice(SHAPE, 0)], CLUSTER)
    if value is not None:
        _check_bytes(value)
    return value


def _slice(obj: dict[str, Any]) -> object:
    value = convert_service(service(SHAPE, 0), [obj], CLUSTER)
    if value is not None:
        _check_bytes(value)
    return value


def _export(obj: dict[str, Any]) -> object:
    export = {"apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
              "metadata": copy.deepcopy(obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {})}
    value = convert_service_export(obj, export, CLUSTER)
    if value is not None:
        _check_bytes(value)
    return value


CASES: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], object]]] = [
    ("CiliumNode", cilium_node(SHAPE, 0), _node),
    ("CiliumIdentity", cilium_identity(SHAPE, 0), _identity),
    ("CiliumEndpoint", cilium_endpoint(SHAPE, 0), _endpoint),
    ("Service", service(SHAPE, 0), _service),
    ("EndpointSlice", endpoint_slice(SHAPE, 0), _slice),
    ("Service+ServiceExport", service(SHAPE, 0), _export),
]


@pytest.mark.parametrize(("kind", "base", "convert"), [pytest.param(*c, id=c[0]) for c in CASES])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bad_field_is_a_conversion_error_or_a_valid_value(
        kind: str, base: dict[str, Any], convert: Callable[[dict[str, Any]], object], data: st.DataObject) -> None:
    obj = data.draw(mutated(base), label=kind)
    before = copy.deepcopy(obj)
    try:
        first = convert(obj)
    except ConversionError:
        pass
    else:
        assert convert(obj) == first  # deterministic
    assert obj == before  # converters never modify their input
