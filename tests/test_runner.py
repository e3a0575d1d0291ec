"""``apiserver.runner``: parts stopped in reverse, every one, even when one stop fails; stop requests
while starting; exit codes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from apiserver.runner import EXIT_FAILURE, EXIT_OK, PartRunner, serve


class Part:
    def __init__(self, name: str, log: list[str], *, fail_stop: bool = False, fail_start: bool = False) -> None:
        self.name, self.log, self.fail_stop, self.fail_start = name, log, fail_stop, fail_start

    async def start(self) -> str:
        if self.fail_start:
            raise OSError(f"{self.name} cannot listen")
        self.log.append(f"start {self.name}")
        return self.name

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} refused to stop")


async def test_parts_stop_in_reverse_even_when_one_stop_fails(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    runner = PartRunner("proc")
    a, b, c = Part("a", log), Part("b", log, fail_stop=True), Part("c", log)
    assert await runner.start("a", a.start, a.stop) == "a"
    await runner.start("b", b.start, b.stop)
    runner.on_stop("client", lambda: _note(log, "close client"))
    await runner.start("c", c.start, c.stop)
    with caplog.at_level(logging.ERROR):
        await runner.stop()
    assert log == ["start a", "start b", "start c", "stop c", "close client", "stop b", "stop a"]
    assert runner.failed_stops == ["b"]
    assert any(r.getMessage() == "Failed to stop" and "b refused to stop" in str(r.__dict__)
               for r in caplog.records)
    await runner.stop()  # idempotent
    assert log[-1] == "stop a"
    with pytest.raises(RuntimeError, match="runner is stopped"):
        runner.on_stop("late", lambda: _note(log, "late"))


async def test_a_failed_start_owes_no_stop_and_spawned_tasks_are_stopped() -> None:
    log: list[str] = []
    runner = PartRunner("proc")
    await runner.start("a", Part("a", log).start, Part("a", log).stop)
    task = runner.spawn("background", asyncio.Event().wait())
    broken = Part("broken", log, fail_start=True)
    with pytest.raises(OSError, match="broken cannot listen"):
        await runner.start("broken", broken.start, broken.stop)
    await runner.stop()
    assert task.cancelled()
    assert log == ["start a", "stop a"]


async def _note(log: list[str], what: str) -> None:
    log.append(what)


async def test_serve_stops_everything_on_request_and_exits_0() -> None:
    log: list[str] = []

    async def main(runner: PartRunner) -> None:
        part = Part("server", log)
        await runner.start("server", part.start, part.stop)
        asyncio.get_running_loop().call_soon(runner.request_stop)

    assert await serve("proc", main, signals=()) == EXIT_OK
    assert log == ["start server", "stop server"]


async def test_a_stop_request_while_starting_cancels_the_start() -> None:
    log: list[str] = []
    connecting = asyncio.Event()
    cancelled: list[bool] = []

    async def main(runner: PartRunner) -> None:
        part = Part("health", log)
        await runner.start("health", part.start, part.stop)
        runner.on_stop("etcd", lambda: _note(log, "never connected, nothing to close"))
        connecting.set()
        runner.request_stop()  # as SIGTERM would, while etcd is still being connected to
        try:
            await asyncio.Event().wait()  # EtcdClient.connect waiting for an etcd that never answers
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    assert await serve("proc", main, signals=()) == EXIT_OK
    assert connecting.is_set() and cancelled == [True]
    assert log == ["start health", "never connected, nothing to close", "stop health"]


async def test_a_failing_start_exits_1_after_stopping_what_started(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []

    async def main(runner: PartRunner) -> None:
        first = Part("health", log)
        await runner.start("health", first.start, first.stop)
        second = Part("metrics", log, fail_start=True)
        await runner.start("metrics", second.start, second.stop)

    with caplog.at_level(logging.ERROR):
        assert await serve("proc", main, signals=()) == EXIT_FAILURE
    assert log == ["start health", "stop health"]
    assert any(r.getMessage() == "Failed to start" for r in caplog.records)


async def test_a_failing_stop_step_makes_the_exit_code_1() -> None:
    log: list[str] = []

    async def main(runner: PartRunner) -> None:
        for part in (Part("a", log), Part("b", log, fail_stop=True), Part("c", log)):
            await runner.start(part.name, part.start, part.stop)
        runner.request_stop()

    assert await serve("proc", main, signals=()) == EXIT_FAILURE
    assert log == ["start a", "start b", "start c", "stop c", "stop b", "stop a"]


async def test_a_part_can_ask_the_process_to_fail() -> None:
    async def main(runner: PartRunner) -> None:
        runner.request_stop(failure="remote etcd lost for good")

    assert await serve("proc", main, signals=()) == EXIT_FAILURE
