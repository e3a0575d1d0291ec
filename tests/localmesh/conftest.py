"""Real kubectl against the ``kubesim`` fixture's emulator: the ``kubectl`` fixture runs it as a
subprocess (its own HOME and cache in ``tmp_path``), skipping the test where kubectl is missing."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

KUBECTL = shutil.which("kubectl") or ("/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None)


@dataclass
class Result:
    code: int
    out: str
    err: str


Kubectl = Callable[..., Coroutine[Any, Any, Result]]


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
