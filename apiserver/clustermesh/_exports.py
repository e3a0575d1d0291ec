"""What the exporter writes: one row per exported prefix (as ``kvstoremesh/_resources.py`` is for
KVStoreMesh), and the sync store each row gets. Pure data plus the store factory.

Each row names its sync store, the prefix written under, the prefix whose keys this cluster owns
(keys left there by a previous run are removed after the initial sync) and the canary key when it
differs from the prefix (upstream's ``cilium/synced/<C>/<prefix>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from apiserver.paths import (
    IDENTITIES_ID_PREFIX,
    IDENTITIES_PREFIX,
    IP_DEFAULT_PREFIX,
    IP_PREFIX,
    NODES_PREFIX,
    SERVICE_EXPORTS_PREFIX,
    SERVICES_PREFIX,
)


@dataclass(frozen=True, slots=True)
class ExportedPrefix:
    name: str  # the sync store's name (``Exporter.stores[name]``)
    prefix: str  # written under
    per_cluster: bool  # keys carry the cluster name: ``<prefix>/<C>/...`` is ours alone
    synced_key: str | None = None  # the canary's prefix, when not ``prefix``

    def stale_prefix(self, cluster: str) -> str:
        """Where keys a previous run of this cluster left behind are looked for."""
        return f"{self.prefix}/{cluster}/" if self.per_cluster else f"{self.prefix}/"


EXPORTS: tuple[ExportedPrefix, ...] = (
    ExportedPrefix("nodes", NODES_PREFIX, per_cluster=True),
    ExportedPrefix("identities", IDENTITIES_ID_PREFIX, per_cluster=False, synced_key=IDENTITIES_PREFIX),
    ExportedPrefix("ip", IP_DEFAULT_PREFIX, per_cluster=False, synced_key=IP_PREFIX),
    ExportedPrefix("services", SERVICES_PREFIX, per_cluster=True),
    ExportedPrefix("serviceexports", SERVICE_EXPORTS_PREFIX, per_cluster=True),
)
