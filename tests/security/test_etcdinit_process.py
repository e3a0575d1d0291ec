"""etcdinit's process handling with stand-in etcd binaries: errors are clear, etcd never survives."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import sys
from pathlib import Path

import pytest
from meshtest import REPO

from apiserver.security.etcd_setup import AuthAdmin, EtcdInitConfig, EtcdInitError, run_etcdinit
from apiserver.security.temp_etcd import EtcdLaunch, TemporaryEtcd, wipe_data_dir
from localmesh.testing.processes import child_process


def fake_etcd(tmp_path: Path, body: str, pre: str = "") -> Path:
    """An executable standing in for etcd; after ``pre`` it records its pid in ``etcd.pid``."""
    script = tmp_path / "fake-etcd"
    script.write_text(f"#!/bin/sh\n{pre}\necho $$ > {tmp_path / 'etcd.pid'}\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes; /proc tells them apart.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


async def never_connects(endpoint: str) -> AuthAdmin:
    raise ConnectionRefusedError(f"nothing on {endpoint}")


def config(tmp_path: Path, binary: str | Path, **kw: object) -> EtcdInitConfig:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return EtcdInitConfig(data_dir=str(data), etcd_binary=str(binary), client_port=1, peer_port=2,
                          **kw)  # type: ignore[arg-type]


def test_wipe_removes_contents_but_keeps_the_directory(tmp_path: Path) -> None:
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "member" / "snap").mkdir(parents=True)
    (data / "member" / "snap" / "db").write_bytes(b"x")
    (data / ".hidden").write_text("x")
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.symlink(outside, data / "link-to-dir")
    assert wipe_data_dir(data) == 3
    assert data.is_dir() and list(data.iterdir()) == []
    assert (outside / "keep").exists()  # a symlink is removed, never followed


@pytest.mark.parametrize(("setup", "message"), [
    pytest.param("missing", "does not exist", id="missing"),
    pytest.param("file", "is not a directory", id="not-a-dir"),
])
def test_unusable_data_dir(tmp_path: Path, setup: str, message: str) -> None:
    target = tmp_path / "data"
    if setup == "file":
        target.write_text("x")
    with pytest.raises(EtcdInitError, match=message):
        wipe_data_dir(target)


async def test_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(EtcdInitError, match="not found on PATH"):
        await run_etcdinit(config(tmp_path, "no-such-etcd-binary"), never_connects)
    with pytest.raises(EtcdInitError, match="does not exist or is not executable"):
        await run_etcdinit(config(tmp_path, tmp_path / "nope" / "etcd"), never_connects)


async def test_etcd_that_exits_early_is_reported_with_its_output(tmp_path: Path) -> None:
    binary = fake_etcd(tmp_path, "echo 'listen tcp: address already in use' >&2\nexit 3")
    with pytest.raises(EtcdInitError, match="exited with code 3") as err:
        await run_etcdinit(config(tmp_path, binary, timeout=30.0), never_connects)
    assert "address already in use" in str(err.value)


async def test_timeout_stops_etcd(tmp_path: Path) -> None:
    binary = fake_etcd(tmp_path, "echo starting\nexec sleep 600")
    with pytest.raises(EtcdInitError, match=r"within 0.5s") as err:
        await run_etcdinit(config(tmp_path, binary, timeout=0.5), never_connects)
    assert "starting" in str(err.value)
    assert not pid_alive(int((tmp_path / "etcd.pid").read_text()))


async def test_etcd_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    binary = fake_etcd(tmp_path, "while :; do sleep 0.05; done", pre="trap '' TERM")
    launch = EtcdLaunch(str(binary), str(tmp_path), "n", "t", client_port=1, peer_port=2)
    etcd = TemporaryEtcd(launch, stop_grace=0.3)
    async with etcd:
        assert etcd.pid is not None
        while not (tmp_path / "etcd.pid").exists():  # the trap must be in place before we signal
            etcd.check_running()
            await asyncio.sleep(0.01)
    assert etcd.exited
    assert not pid_alive(int((tmp_path / "etcd.pid").read_text()))


async def test_sigterm_to_etcdinit_stops_etcd(tmp_path: Path) -> None:
    binary = fake_etcd(tmp_path, "exec sleep 600")
    (tmp_path / "data").mkdir()
    async with child_process(
        sys.executable, "-m", "apiserver", "etcdinit", f"--etcd-data-dir={tmp_path / 'data'}",
        f"--etcd-binary={binary}", "--etcd-client-port=1", "--etcd-peer-port=2", "--timeout=60s",
        env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=asyncio.subprocess.PIPE) as proc:
        pid_file = tmp_path / "etcd.pid"
        while not pid_file.exists():  # etcd is up: etcdinit is now waiting for it
            assert proc.returncode is None, "etcdinit exited early"
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert b"Interrupted" in err
    assert not pid_alive(int(pid_file.read_text()))


async def test_launch_command_matches_upstream() -> None:
    cmd = EtcdLaunch("/usr/bin/etcd", "/var/run/etcd", "clustermesh-apiserver", "tok").command()
    assert cmd[:6] == [
        "/usr/bin/etcd", "--data-dir=/var/run/etcd", "--name=clustermesh-apiserver",
        "--listen-client-urls=http://localhost:2379", "--advertise-client-urls=http://localhost:2379",
        "--listen-peer-urls=http://localhost:2380",
    ]
    assert "--initial-cluster-token=tok" in cmd and cmd[-1] == "--initial-cluster-state=new"
