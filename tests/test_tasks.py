"""``cancel_and_wait``: the one way the product stops a task."""

from __future__ import annotations

import asyncio
import logging

import pytest

from apiserver._tasks import cancel_and_wait


async def _forever() -> None:
    await asyncio.Event().wait()


async def _fails_on_cancel() -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise RuntimeError("cleanup failed") from None


async def test_cancels_and_waits_for_every_task() -> None:
    tasks = [asyncio.create_task(_forever()), asyncio.create_task(_fails_on_cancel())]
    await asyncio.sleep(0)
    assert await cancel_and_wait(*tasks, None) == set()
    assert all(t.done() for t in tasks)
    assert tasks[0].cancelled() and isinstance(tasks[1].exception(), RuntimeError)  # not raised to us


async def test_a_finished_task_and_none_are_fine() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    assert await cancel_and_wait(done, None) == set()
    assert await cancel_and_wait() == set()


async def test_the_callers_cancellation_propagates() -> None:
    stubborn_release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await stubborn_release.wait()  # takes its time to finish
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(cancel_and_wait(task))
    await asyncio.sleep(0)
    stopper.cancel()  # the owner itself is cancelled while it waits
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()
    stubborn_release.set()
    await asyncio.wait({task})
    assert task.cancelled()


async def test_a_task_ignoring_cancellation_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def ignores_cancel() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallowed: the bug this reports

    task = asyncio.create_task(ignores_cancel(), name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR):
        pending = await cancel_and_wait(task, grace=0.01)
    assert pending == {task} and not task.done()
    records = [r for r in caplog.records if r.getMessage() == "Task ignored its cancellation and is still running"]
    assert len(records) == 1 and "stubborn" in str(records[0].__dict__)
    release.set()
    await task
