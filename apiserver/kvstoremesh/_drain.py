"""Remove everything cached for a remote cluster from the local etcd.

Order matters: the local cluster config goes first, so that no agent starts reading a cache that
is about to disappear; then (first attempt only) a grace period lets connected agents notice and
disconnect; then the canaries and every cache prefix of the cluster are deleted. Failures are
retried ``retries`` times with a doubling back-off. The caller must have stopped every writer of
the cluster (sync stores, cluster config enforcer) before, or they would write the keys back.
"""

from __future__ import annotations

import asyncio
import math

from apiserver._backoff import Backoff
from apiserver._logging import get_logger
from apiserver.kvstore import KVBackend, KVStoreError
from apiserver.kvstoremesh._resources import drain_prefixes, local_cluster_config_key

log = get_logger(__name__)


async def drain_cluster(backend: KVBackend, cluster: str, *, grace_period: float, retries: int,
                        backoff: float, request_timeout: float = 10.0) -> bool:
    """True once everything was deleted; False if it still failed after the retries."""
    attempt, delays = 0, Backoff(backoff, math.inf, jitter=0.0)
    log.info("Remote cluster disconnected: draining cached data", cluster=cluster)
    while True:
        try:
            async with asyncio.timeout(request_timeout):
                await backend.delete(local_cluster_config_key(cluster))
            if attempt == 0 and grace_period > 0:
                log.info("Waiting before removing cached data from kvstore, to allow Cilium agents to "
                         "disconnect", cluster=cluster, duration=f"{grace_period:g}s")
                await asyncio.sleep(grace_period)
            for prefix in drain_prefixes(cluster):
                async with asyncio.timeout(request_timeout):
                    await backend.delete_prefix(prefix)
        except (KVStoreError, TimeoutError) as exc:
            if attempt >= retries:
                log.error("Failed to remove cached data from kvstore, despite retries. Reconnecting to the "
                          "same cluster without first restarting KVStoreMesh may lead to inconsistencies",
                          cluster=cluster, error=str(exc) or type(exc).__name__)
                return False
            delay = delays.next()
            log.warning("Failed to remove cached data from kvstore, retrying", cluster=cluster,
                        error=str(exc) or type(exc).__name__, retry_in=f"{delay:g}s")
            await asyncio.sleep(delay)
            attempt += 1
            continue
        log.info("Successfully removed all cached data from kvstore", cluster=cluster)
        return True
