"""Mirrored paths: what is watched on the remote and where it lands locally."""

from __future__ import annotations

import pytest

from apiserver.kvstoremesh import RESOURCES, drain_prefixes
from apiserver.kvstoremesh._resources import ENDPOINTS, IDENTITIES, NODES, SERVICE_EXPORTS, SERVICES, MirroredResource


@pytest.mark.parametrize(("resource", "state", "cache", "remote_canary", "local_canary"), [
    pytest.param(NODES, "cilium/state/nodes/v1/c2", "cilium/cache/nodes/v1/c2",
                 "cilium/state/nodes/v1", "cilium/cache/nodes/v1", id="nodes"),
    pytest.param(SERVICES, "cilium/state/services/v1/c2", "cilium/cache/services/v1/c2",
                 "cilium/state/services/v1", "cilium/cache/services/v1", id="services"),
    pytest.param(SERVICE_EXPORTS, "cilium/state/serviceexports/v1/c2", "cilium/cache/serviceexports/v1/c2",
                 "cilium/state/serviceexports/v1", "cilium/cache/serviceexports/v1", id="service-exports"),
    pytest.param(IDENTITIES, "cilium/state/identities/v1/id", "cilium/cache/identities/v1/c2/id",
                 "cilium/state/identities/v1", "cilium/cache/identities/v1", id="identities"),
    pytest.param(ENDPOINTS, "cilium/state/ip/v1/default", "cilium/cache/ip/v1/c2",
                 "cilium/state/ip/v1", "cilium/cache/ip/v1", id="endpoints"),
])
def test_paths(resource: MirroredResource, state: str, cache: str, remote_canary: str, local_canary: str) -> None:
    assert resource.watch_prefix("c2", remote_cached=False) == state
    assert resource.cache_prefix("c2") == cache
    # A cached remote (fed by another KVStoreMesh) is read at the same cache paths.
    assert resource.watch_prefix("c2", remote_cached=True) == cache
    assert resource.remote_synced_key(remote_cached=False) == remote_canary
    assert resource.remote_synced_key(remote_cached=True) == local_canary
    assert resource.local_synced_key() == local_canary


def test_only_service_exports_depend_on_the_capability() -> None:
    for resource in RESOURCES:
        assert resource.enabled(True) and resource.enabled(False)
        assert resource.enabled(None) == (resource is not SERVICE_EXPORTS)
    assert {r.name for r in RESOURCES if r.revocable} == {"services", "service exports"}


def test_drain_prefixes_cover_every_cache_and_the_canaries() -> None:
    assert drain_prefixes("c2") == [
        "cilium/synced/c2/",
        "cilium/cache/nodes/v1/c2/",
        "cilium/cache/services/v1/c2/",
        "cilium/cache/serviceexports/v1/c2/",
        "cilium/cache/identities/v1/c2/",
        "cilium/cache/ip/v1/c2/",
    ]
