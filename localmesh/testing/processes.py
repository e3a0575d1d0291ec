"""Child processes of a test: started, and killed (then reaped) when the test leaves, however it leaves;
waiting for a file one writes; whether one of our servers answers ready."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp


@contextlib.asynccontextmanager
async def child_process(*cmd: str, **kwargs: Any) -> AsyncIterator[asyncio.subprocess.Process]:
    """``asyncio.create_subprocess_exec(*cmd, **kwargs)``; on exit a process still running is killed."""
    proc = await asyncio.create_subprocess_exec(*cmd, **kwargs)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def answers_ready(session: aiohttp.ClientSession, port: int) -> bool:
    """Whether the health server on 127.0.0.1:``port`` answers ``/readyz`` with 200 ``Ready``."""
    try:
        async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
            return resp.status == 200 and await resp.text() == "Ready"
    except aiohttp.ClientError:
        return False


async def wait_for_file(proc: asyncio.subprocess.Process, path: Path, timeout: float) -> None:
    """Wait until ``proc`` has written ``path``; fail at once if it exits first, or after ``timeout`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():  # noqa: ASYNC240 -- one stat per poll, in a test
        assert proc.returncode is None, f"{proc.pid} exited early (code {proc.returncode})"
        assert loop.time() < deadline, f"{path} not written within {timeout:g}s"
        await asyncio.sleep(0.05)
