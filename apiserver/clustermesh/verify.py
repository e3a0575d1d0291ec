"""What the exporter should have written, compared key by key with what etcd holds.

The expected state is not computed by a second implementation: the exporter itself runs -- the
same reflectors, namespace gate, converters, IP ownership and service joins -- on a
``DiscardingBackend``, and once every store's initial list is complete each sync store's desired
state is the expectation. Every key under each store's owned prefix in etcd is then compared;
the cluster config and every sync canary must be there too. Read-only on etcd.
"""

from __future__ import annotations

import asyncio

from apiserver.clustermesh.exporter import Exporter
from apiserver.clustermesh.options import ExporterOptions
from apiserver.convert import cluster_config_value, local_cluster_config
from apiserver.kube import KubeClient
from apiserver.kvstore import KVBackend
from apiserver.kvstore.discard import DiscardingBackend
from apiserver.kvstore.drift import DriftReport, compare
from apiserver.metrics import Metrics
from apiserver.paths import cluster_config_key

__all__ = ["ExpectedStore", "expected_stores", "verify_export"]

LIST_PAGE = 1000


class ExpectedStore:
    """One sync store's expectation: the prefix it owns, its keys (full) and its canary."""

    __slots__ = ("canary", "keys", "name", "prefix")

    def __init__(self, name: str, prefix: str, keys: dict[str, bytes], canary: str) -> None:
        self.name = name
        self.prefix = prefix
        self.keys = keys
        self.canary = canary


async def expected_stores(options: ExporterOptions, kube: KubeClient, *, timeout: float) -> list[ExpectedStore]:
    """Run the exporter on a ``DiscardingBackend`` until its initial sync is complete."""
    backend = DiscardingBackend()
    exporter = Exporter(options, backend, kube, Metrics(), restore=False)
    try:
        async with asyncio.timeout(timeout):
            await exporter.start()
            await exporter.wait_ready()
        found: list[ExpectedStore] = []
        for name, store in exporter.stores.items():
            base = store.prefix + "/"
            found.append(ExpectedStore(name, store.owned_prefix,
                                       {base + key: value for key, value in store.desired().items()},
                                       store.canary_key))
        return found
    finally:
        await exporter.stop()
        await backend.close()


async def _read(etcd: KVBackend, prefix: str) -> dict[str, bytes]:
    kvs, _ = await etcd.list_prefix(prefix, page_size=LIST_PAGE)
    return {kv.key: kv.value for kv in kvs}


async def verify_export(options: ExporterOptions, kube: KubeClient, etcd: KVBackend, *,
                        timeout: float = 300.0) -> DriftReport:
    cluster = options.cluster
    report = DriftReport(f"cluster {cluster.name} (ID {cluster.id}): Kubernetes vs etcd")
    for store in await expected_stores(options, kube, timeout=timeout):
        actual = await _read(etcd, store.prefix)
        report.prefixes.append(compare(store.prefix.rstrip("/"), store.keys, actual))
        if await etcd.get(store.canary) is None:
            report.problems.append(f"sync canary {store.canary} missing")
    key = cluster_config_key(cluster.name)
    want = cluster_config_value(local_cluster_config(cluster, mcs_api_enabled=options.enable_mcs_api))
    found = await etcd.get(key)
    if found is None:
        report.problems.append(f"cluster config {key} missing")
    elif found.value != want:
        report.problems.append(f"cluster config {key} differs: {found.value!r}, want {want!r}")
    return report
