"""``apiserver.etcd_process``: the one etcd launcher (etcdinit's temporary etcd and the test etcd use it).

A shell script stands in for etcd, so what is checked is the process handling itself."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from apiserver.etcd_process import EtcdProcess, clean_env
from localmesh.testing.polling import eventually


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "fake-etcd"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return [str(path)]


STUBBORN = "trap '' TERM\ntouch \"$0.ready\"\nwhile :; do sleep 0.05; done\n"


async def _started_stubborn(tmp_path: Path) -> EtcdProcess:
    """A fake etcd that ignores SIGTERM, once its trap is set (a signal before it would kill it)."""
    process = EtcdProcess(_script(tmp_path, STUBBORN))
    process.start(subprocess.DEVNULL)
    await eventually(lambda: (tmp_path / "fake-etcd.ready").exists(), what="the fake etcd's trap")
    return process


async def test_stop_sigterm_then_sigkill_when_ignored(tmp_path: Path) -> None:
    process = await _started_stubborn(tmp_path)
    assert process.running and process.pid is not None
    await process.stop(grace=0.2)
    assert not process.running and process.returncode == -9  # SIGKILL: the TERM was ignored


async def test_stop_obeys_sigterm(tmp_path: Path) -> None:
    process = EtcdProcess(_script(tmp_path, "exec sleep 30\n"))
    process.start(subprocess.DEVNULL)
    process.stop_sync(grace=5)
    assert process.returncode == -15
    process.stop_sync()  # stopped: nothing to do
    await process.stop()


async def test_a_cancelled_stop_kills_etcd(tmp_path: Path) -> None:
    process = await _started_stubborn(tmp_path)
    stopping = asyncio.create_task(process.stop(grace=60))
    await asyncio.sleep(0)  # the stop has sent SIGTERM and waits for the exit
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    assert process.returncode == -9


def test_start_twice_is_refused_and_env_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETCD_DATA_DIR", "/elsewhere")
    monkeypatch.setenv("ETCDCTL_API", "2")
    env = clean_env({"EXTRA": "1"})
    assert "ETCD_DATA_DIR" not in env and "ETCDCTL_API" not in env and env["EXTRA"] == "1"
    assert env["PATH"] == os.environ["PATH"]
    process = EtcdProcess(_script(tmp_path, "env > \"$0.env\"\nexec sleep 30\n"))
    process.start(subprocess.DEVNULL)
    with pytest.raises(RuntimeError, match="already running"):
        process.start(subprocess.DEVNULL)
    process.kill()
    assert process.returncode == -9
