"""Garbage-collector policy of a long-running process: keep the collector off long-lived state.

An exporter or KVStoreMesh holds millions of objects (caches, sync-store state) for its whole life.
While they are built, every full collection walks all of them again (5 % of a 100k-endpoint
bootstrap); afterwards each full collection is a 100+ ms pause, which shows as latency spikes
under churn. ``freeze_after_bootstrap`` freezes what exists (a generation the collector skips)
every few hundred milliseconds while bootstrapping, collects young objects less often meanwhile,
and once ready does one full collection (reclaiming cyclic garbage frozen during bootstrap) and
freezes the result for good.

Process-wide settings: only a process entry point (``main``) calls this, never a library object
that tests or the demo may run several of in one process.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable

from apiserver._logging import get_logger

log = get_logger(__name__)

FREEZE_INTERVAL = 0.2
# A bootstrap that takes longer than this (etcd or the API server down) stops freezing, so that
# retry loops cannot pile up garbage the collector never sees.
FREEZE_MAX = 300.0
# Young collections every 700 allocations would scan the list page being decoded and converted
# over and over; most of what a bootstrap allocates dies young, by reference count.
BOOTSTRAP_GC_THRESHOLD = 50_000


async def freeze_after_bootstrap(ready: Awaitable[None]) -> None:
    """See the module docstring; ``ready`` completes when the process has bootstrapped."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FREEZE_MAX
    done = asyncio.ensure_future(ready)
    thresholds = gc.get_threshold()
    gc.set_threshold(BOOTSTRAP_GC_THRESHOLD, *thresholds[1:])
    try:
        while not done.done() and loop.time() < deadline:
            gc.freeze()
            await asyncio.wait({done}, timeout=FREEZE_INTERVAL)
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        await done
    finally:
        done.cancel()
        gc.set_threshold(*thresholds)
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    log.debug("Bootstrap heap frozen", objects=gc.get_freeze_count())
