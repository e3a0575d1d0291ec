"""The process garbage-collector policy: thresholds raised while bootstrapping, heap frozen once ready."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from apiserver._heap import BOOTSTRAP_GC_THRESHOLD, freeze_after_bootstrap


@pytest.fixture
def pristine_gc() -> Iterator[tuple[int, int, int]]:
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        yield thresholds
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_freezes_after_bootstrap_and_restores_thresholds(pristine_gc: tuple[int, int, int]) -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(freeze_after_bootstrap(ready.wait()))
    await asyncio.sleep(0)
    assert gc.get_threshold()[0] == BOOTSTRAP_GC_THRESHOLD
    ready.set()
    await asyncio.wait_for(task, 5)
    assert gc.get_threshold() == pristine_gc
    assert gc.get_freeze_count() > 0


async def test_cancelled_before_ready_leaves_the_collector_as_it_was(pristine_gc: tuple[int, int, int]) -> None:
    task = asyncio.create_task(freeze_after_bootstrap(asyncio.Event().wait()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.get_threshold() == pristine_gc
    assert gc.get_freeze_count() == 0
