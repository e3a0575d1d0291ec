"""What KVStoreMesh mirrors: one row per resource, and the paths derived from it. Pure.

For a remote cluster ``<R>``, every resource has:

- the prefix watched on the remote: the ``cilium/state/...`` one, or, when the remote is itself
  a KVStoreMesh cache (``cached: true``), the ``cilium/cache/.../<R>`` one;
- the remote canary that gates the watch (``cilium/synced/<R>/<base or its cache form>``);
- the local cache prefix the values are copied to, and the local canary override
  (``cilium/synced/<R>/cilium/cache/<...>/v1``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from apiserver.paths import (
    CLUSTER_CONFIG_PREFIX,
    IDENTITIES_PREFIX,
    IP_DEFAULT_PREFIX,
    IP_PREFIX,
    NODES_PREFIX,
    SERVICE_EXPORTS_PREFIX,
    SERVICES_PREFIX,
    SYNCED_PREFIX,
    join_key,
    state_to_cache_prefix,
)

_CLUSTER = "<cluster-name>"


def _always(_service_exports_enabled: bool | None) -> bool:
    return True


def _when_service_exports_known(service_exports_enabled: bool | None) -> bool:
    # Absent means "the remote predates MCS-API support": nothing to mirror, drain instead.
    return service_exports_enabled is not None


@dataclass(frozen=True, slots=True)
class MirroredResource:
    """One mirrored resource type. ``{cluster}`` placeholders are filled per remote."""

    name: str  # status / log name, as upstream's reflector names
    base_prefix: str  # e.g. cilium/state/nodes/v1 (also the remote canary suffix)
    state_template: str  # watched on a non-cached remote
    cache_template: str  # written locally, and watched on a cached remote
    revocable: bool = False  # drained when the remote stays unreachable past the cache TTL
    enabled: Callable[[bool | None], bool] = _always  # given capabilities.serviceExportsEnabled

    def state_prefix(self, cluster: str) -> str:
        return self.state_template.replace(_CLUSTER, cluster)

    def cache_prefix(self, cluster: str) -> str:
        return self.cache_template.replace(_CLUSTER, cluster)

    def local_synced_key(self) -> str:
        """The canary override: ``cilium/synced/<R>/`` + this."""
        return state_to_cache_prefix(self.base_prefix)

    def remote_synced_key(self, remote_cached: bool) -> str:
        return state_to_cache_prefix(self.base_prefix) if remote_cached else self.base_prefix

    def watch_prefix(self, cluster: str, remote_cached: bool) -> str:
        return self.cache_prefix(cluster) if remote_cached else self.state_prefix(cluster)


def _per_cluster(name: str, base: str, *, revocable: bool = False,
                 enabled: Callable[[bool | None], bool] = _always) -> MirroredResource:
    """A resource whose keys already carry the cluster name: ``<base>/<R>/...``."""
    return MirroredResource(name=name, base_prefix=base, state_template=join_key(base, _CLUSTER),
                    cache_template=join_key(state_to_cache_prefix(base), _CLUSTER),
                    revocable=revocable, enabled=enabled)


NODES = _per_cluster("nodes", NODES_PREFIX)
SERVICES = _per_cluster("services", SERVICES_PREFIX, revocable=True)
SERVICE_EXPORTS = _per_cluster("service exports", SERVICE_EXPORTS_PREFIX, revocable=True,
                               enabled=_when_service_exports_known)
# Identities: only the "id/" keys (no "value/" keys of kvstore identity mode).
IDENTITIES = MirroredResource(
    name="identities", base_prefix=IDENTITIES_PREFIX,
    state_template=join_key(IDENTITIES_PREFIX, "id"),
    cache_template=join_key(state_to_cache_prefix(IDENTITIES_PREFIX), _CLUSTER, "id"))
ENDPOINTS = MirroredResource(
    name="endpoints", base_prefix=IP_PREFIX,
    state_template=IP_DEFAULT_PREFIX,
    cache_template=join_key(state_to_cache_prefix(IP_PREFIX), _CLUSTER))

RESOURCES: tuple[MirroredResource, ...] = (NODES, SERVICES, SERVICE_EXPORTS, IDENTITIES, ENDPOINTS)


def drain_prefixes(cluster: str) -> list[str]:
    """Every local prefix holding data of ``cluster`` (with trailing ``/``), canaries first."""
    prefixes = [join_key(SYNCED_PREFIX, cluster)]
    prefixes += [join_key(state_to_cache_prefix(r.base_prefix), cluster) for r in RESOURCES]
    return [p + "/" for p in prefixes]


def local_cluster_config_key(cluster: str) -> str:
    return join_key(CLUSTER_CONFIG_PREFIX, cluster)


def remote_synced_prefix(cluster: str) -> str:
    return join_key(SYNCED_PREFIX, cluster) + "/"
