"""The informer cache: keys, namespace index, pluggable indexes kept right across updates."""

from __future__ import annotations

from typing import Any

import pytest

from apiserver.kube import Cache, CompactCache, index_by_service, object_key


def _slice(ns: str, name: str, service: str | None, rv: str = "1") -> dict[str, Any]:
    labels = {"kubernetes.io/service-name": service} if service else {}
    return {"metadata": {"namespace": ns, "name": name, "labels": labels, "resourceVersion": rv}}


def test_put_get_pop_and_namespace_index() -> None:
    cache = Cache()
    a, b, c = _slice("ns1", "a", None), _slice("ns1", "b", None), _slice("ns2", "c", None)
    for obj in (a, b, c):
        assert cache.put(object_key(obj), obj) is None
    a2 = _slice("ns1", "a", None, rv="2")
    assert cache.put(("ns1", "a"), a2) is a
    assert cache.get("ns1", "a") is a2
    assert len(cache) == 3
    assert cache.list_namespace("ns1") == [a2, b]
    assert cache.list_namespace("nope") == []
    assert cache.pop(("ns1", "b")) is b
    assert cache.pop(("ns1", "b")) is None
    assert cache.pop(("ns1", "a")) is a2
    # Empty buckets go away: namespaces() lists only namespaces that still hold objects.
    assert cache.namespaces() == ["ns2"]
    assert cache.objects() == [c]


def test_cluster_scoped_objects_have_empty_namespace() -> None:
    node = {"metadata": {"name": "n1"}}
    assert object_key(node) == ("", "n1")


def test_index_follows_label_changes_and_deletes() -> None:
    cache = Cache()
    s1 = _slice("ns", "s1", "web")
    cache.put(object_key(s1), s1)
    # An index added late is built over what is already cached.
    cache.add_index("service", index_by_service)
    assert cache.by_index("service", "ns/web") == [s1]
    s2 = _slice("ns", "s2", "web")
    cache.put(object_key(s2), s2)
    assert cache.by_index("service", "ns/web") == [s1, s2]
    # Relabelled: moves from one value to the other.
    s1b = _slice("ns", "s1", "db", rv="2")
    cache.put(object_key(s1b), s1b)
    assert cache.by_index("service", "ns/web") == [s2]
    assert cache.by_index("service", "ns/db") == [s1b]
    # Label removed: in no bucket at all.
    s2b = _slice("ns", "s2", None, rv="3")
    cache.put(object_key(s2b), s2b)
    assert cache.by_index("service", "ns/web") == []
    assert cache.index_values("service") == ["ns/db"]
    cache.pop(("ns", "s1"))
    assert cache.index_values("service") == []


def test_index_errors() -> None:
    cache = Cache()
    cache.add_index("x", lambda o: ())
    with pytest.raises(ValueError, match="already exists"):
        cache.add_index("x", lambda o: ())
    with pytest.raises(KeyError):
        cache.by_index("missing", "v")


def test_multi_valued_index() -> None:
    cache = Cache()
    cache.add_index("ips", lambda o: o["ips"])
    obj = {"metadata": {"name": "ep"}, "ips": ["10.0.0.1", "10.0.0.2"]}
    cache.put(object_key(obj), obj)
    assert cache.by_index("ips", "10.0.0.2") == [obj]
    obj2 = {"metadata": {"name": "ep"}, "ips": ["10.0.0.2", "10.0.0.3"]}
    cache.put(object_key(obj2), obj2)
    assert cache.by_index("ips", "10.0.0.1") == []
    assert cache.by_index("ips", "10.0.0.2") == [obj2]
    assert cache.by_index("ips", "10.0.0.3") == [obj2]


def test_compact_cache_answers_like_the_plain_cache_with_copies() -> None:
    plain, compact = Cache(), CompactCache()
    objs = [_slice("ns1", "a", "web"), _slice("ns1", "b", "web"), _slice("ns2", "c", "db")]
    for cache in (plain, compact):
        cache.add_index("service", index_by_service)
        for obj in objs:
            cache.put(object_key(obj), obj)
    a2 = _slice("ns1", "a", "db", rv="2")
    assert compact.put(("ns1", "a"), a2) == plain.put(("ns1", "a"), a2) == objs[0]
    for read in (lambda c: c.get("ns1", "b"), lambda c: c.list_namespace("ns1"), lambda c: c.objects(),
                 lambda c: c.by_index("service", "ns1/db"), lambda c: c.by_index("service", "ns1/web")):
        assert read(compact) == read(plain)
    # Stored serialized: every read decodes a fresh copy, so callers cannot alter the cache.
    got = compact.get("ns1", "b")
    assert got == objs[1] and got is not objs[1] and got is not compact.get("ns1", "b")
    assert compact.pop(("ns2", "c")) == objs[2]
    assert compact.namespaces() == ["ns1"]
    assert compact.index_values("service") == ["ns1/web", "ns1/db"]
