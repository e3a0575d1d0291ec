"""A started emulator with its controllers, a kubeconfig for it, and real kubectl against it."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from localmesh.kubesim import KubeSim
from localmesh.kubesim.controllers import ControllerManager

KUBECTL = shutil.which("kubectl")
POOL = "172.19.255.0/29"  # 6 usable addresses


@dataclass
class Result:
    code: int
    out: str
    err: str


Kubectl = Callable[..., Coroutine[Any, Any, Result]]


@pytest_asyncio.fixture
async def manager(kubesim: KubeSim) -> AsyncIterator[ControllerManager]:
    controllers = ControllerManager(kubesim, lb_pool=POOL)
    await controllers.start()
    try:
        yield controllers
    finally:
        await controllers.stop()


@pytest.fixture
def kubectl(kubeconfig_path: Path, tmp_path: Path) -> Kubectl:
    if KUBECTL is None:
        pytest.skip("kubectl not installed")
    cache = tmp_path / "kubectl-cache"

    async def run(*args: str, stdin: bytes | None = None, timeout: float = 30.0) -> Result:
        assert KUBECTL is not None
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, f"--kubeconfig={kubeconfig_path}", f"--cache-dir={cache}", *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={"HOME": str(tmp_path)})
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    return run


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy; fails with its last value after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s (last value: {value!r})")
        await asyncio.sleep(0.02)
