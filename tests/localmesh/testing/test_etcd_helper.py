"""The etcd test helper: start/stop/kill/restart, TLS + RBAC bootstrap, clear errors, clean teardown."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from localmesh.testing.etcd import EtcdNotInstalledError, EtcdServer, EtcdStartError, EtcdTLS, _make_scratch


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _wait_dead(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_shared_server_serves_and_uses_tmpfs(etcd_shared: EtcdServer, etcd_prefix: str) -> None:
    assert etcd_shared.endpoint.startswith("http://127.0.0.1:")
    assert etcd_shared.client_url == etcd_shared.endpoint
    if os.path.isdir("/dev/shm"):
        assert str(etcd_shared.data_dir).startswith("/dev/shm/")
    etcd_shared.etcdctl("put", f"{etcd_prefix}k", "v")
    assert etcd_shared.etcdctl("get", "--print-value-only", f"{etcd_prefix}k").stdout.strip() == "v"
    # The readiness probe cleans up after itself.
    assert etcd_shared.etcdctl("get", "--prefix", "etcd-test-helper/").stdout == ""


async def test_kill_restart_keeps_data_and_wipe_drops_it() -> None:
    async with EtcdServer() as srv:
        await srv.etcdctl_async("put", "k", "v1")
        pid, port = srv.pid, srv.client_port
        assert pid is not None
        await srv.kill()
        assert srv.pid is None and _wait_dead(pid)
        await srv.start()
        assert srv.client_port == port  # clients reconnect to the same address
        assert (await srv.etcdctl_async("get", "--print-value-only", "k")).stdout.strip() == "v1"
        await srv.restart(wipe=True)
        assert (await srv.etcdctl_async("get", "k")).stdout == ""
        base = srv.data_dir.parent
    assert not base.exists()
    assert not _alive(pid)


def test_tls_auth_identity_is_the_certificate_cn(etcd_tls_shared: EtcdServer, etcd_pki: EtcdTLS,
                                                etcd_prefix: str) -> None:
    srv = etcd_tls_shared
    assert srv.endpoint.startswith("https://")
    srv.etcdctl("put", f"{etcd_prefix}k", "v")  # as root, by CN
    denied = srv.etcdctl("put", f"{etcd_prefix}k", "v", user="nobody-with-this-cn", check=False)
    assert denied.returncode != 0 and "permission denied" in denied.stderr
    no_cert = srv.etcdctl("get", f"{etcd_prefix}k", "--command-timeout=1s", user=None, check=False)
    assert no_cert.returncode != 0
    assert "root" in srv.etcdctl("user", "list").stdout.split()


def test_password_auth_without_tls() -> None:
    with EtcdServer(auth=True) as srv:
        srv.etcdctl("put", "k", "v")
        anonymous = srv.etcdctl("get", "k", user=None, check=False)
        assert anonymous.returncode != 0 and "user name is empty" in anonymous.stderr


def test_missing_binaries_are_named_with_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EtcdNotInstalledError, match="apt-get install -y etcd-server etcd-client"):
        EtcdServer()


def test_start_failure_reports_etcd_log() -> None:
    srv = EtcdServer(extra_args=["--no-such-flag"])
    try:
        with pytest.raises(EtcdStartError, match="no-such-flag"):
            srv.start_sync()
    finally:
        srv.close_sync()


def test_fixture_teardown_leaves_no_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(f"""
        def test_a(etcd_server, etcd_tls_server):
            with open({str(pidfile)!r}, "w") as f:
                f.write(f"{{etcd_server.pid}} {{etcd_tls_server.pid}} {{etcd_server.data_dir}}")
    """))
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--noconftest",
         "-p", "localmesh.testing.etcd_fixtures", str(tmp_path / "test_inner.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plain, tls, data_dir = pidfile.read_text().split()
    assert _wait_dead(int(plain)) and _wait_dead(int(tls))
    assert not Path(data_dir).exists()


def test_scratch_dirs_of_dead_test_processes_are_swept() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale, ours = _make_scratch("etcd-test-"), _make_scratch("etcd-test-")
    (stale / "owner.pid").write_text(str(gone.pid))
    try:
        EtcdServer().close_sync()  # creating a server sweeps
        assert not stale.exists()
        assert ours.exists()  # this process is alive: its dirs stay
    finally:
        shutil.rmtree(ours, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)


def test_client_port_on_another_etcds_peer_port_is_not_mistaken_for_ours() -> None:
    """etcd serves the client API on its peer port too: a new server whose client port is a running
    server's peer port must not report that other etcd as itself (it retries on fresh ports)."""
    first = EtcdServer(name="first").start_sync()
    second = EtcdServer(name="second")
    try:
        second._client_port = first._peer_port  # the clash the kernel can hand out
        second.start_sync()
        assert second.client_url != f"http://127.0.0.1:{first._peer_port}"
        members = second.etcdctl("member", "list").stdout
        assert "second" in members and "first" not in members
        assert first.etcdctl("get", "--prefix", "", "--keys-only").stdout.strip() == ""
    finally:
        second.stop_sync()
        first.stop_sync()
