"""Real etcd processes for tests, benchmarks and the demo: plain, TLS with client-cert auth, RBAC.

``EtcdServer`` runs the system ``etcd`` (through the product's launcher, ``apiserver.etcd_process``)
on free loopback ports with its data on tmpfs, waits until a write succeeds, and can be stopped,
SIGKILLed and restarted on the same data dir and ports.
``EtcdTLS`` is a throwaway PKI (see ``apiserver.security.pki``) laid out for etcd and its clients.

The helper talks to etcd only through ``etcdctl`` so that it never depends on the project's own
client, which is what the tests exercise. It never touches processes it did not start.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from apiserver.etcd_process import EtcdProcess, clean_env, with_parent_death_signal
from apiserver.kvstore.etcd.config import EtcdConfig
from apiserver.security.pki import CertFiles, CertKey, generate_ca, issue_cert
from localmesh.testing.ports import free_ports

__all__ = ["SERVER_SANS", "EtcdNotInstalledError", "EtcdServer", "EtcdStartError", "EtcdTLS", "etcd_binaries"]

SERVER_SANS = ("127.0.0.1", "::1", "localhost", "clustermesh-apiserver.cilium.io", "*.mesh.cilium.io")
SERVER_CN = "clustermesh-apiserver.cilium.io"
ROOT_USER = "root"
# The readiness probe writes (then deletes) this key; it sits outside every prefix the project uses.
_PROBE_KEY = "etcd-test-helper/ready"
_PORT_ATTEMPTS = 3
_INSTALL_HINT = "install them with: apt-get install -y etcd-server etcd-client"


class EtcdNotInstalledError(RuntimeError):
    """``etcd`` or ``etcdctl`` is not on PATH."""


class EtcdStartError(RuntimeError):
    """etcd exited or did not accept writes in time; the message carries the tail of its log."""


class _PortTakenError(EtcdStartError):
    """Another process grabbed a port between our pick and etcd's bind (other processes run etcds too)."""


def etcd_binaries() -> tuple[str, str]:
    """Paths of ``etcd`` and ``etcdctl``, or a clear error saying how to install them."""
    etcd, etcdctl = shutil.which("etcd"), shutil.which("etcdctl")
    if etcd is None or etcdctl is None:
        missing = " and ".join(n for n, p in (("etcd", etcd), ("etcdctl", etcdctl)) if p is None)
        raise EtcdNotInstalledError(f"{missing} not found on PATH; {_INSTALL_HINT}")
    return etcd, etcdctl


def _scratch_root() -> str | None:
    # tmpfs makes etcd's fsyncs free: 3.4 has no --unsafe-no-fsync.
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


_OWNER_FILE = "owner.pid"
_SCRATCH_PREFIXES = ("etcd-test-", "etcd-pki-")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale_scratch() -> None:
    """Remove scratch dirs left by test processes that died without cleanup (tmpfs is RAM).
    Only dirs this helper created (they carry an owner pid file) whose owner is gone."""
    root = Path(_scratch_root() or tempfile.gettempdir())
    for entry in root.iterdir():
        if not entry.name.startswith(_SCRATCH_PREFIXES):
            continue
        try:
            owner = int((entry / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _pid_alive(owner):
            shutil.rmtree(entry, ignore_errors=True)


def _make_scratch(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=_scratch_root()))
    (path / _OWNER_FILE).write_text(str(os.getpid()))
    return path


def _clean_env() -> dict[str, str]:
    return clean_env({"ETCDCTL_API": "3"})


class EtcdTLS:
    """A CA, an etcd server certificate and per-user client certificates (CN = etcd user name).

    Files live in ``directory`` (a fresh temp dir when omitted; ``cleanup()`` removes a temp dir
    this object created): ``ca.crt``, ``server.crt``/``server.key``, ``client-<user>.crt``/``.key``.
    """

    def __init__(self, directory: str | Path | None = None, *, ca_cn: str = "cilium-ca",
                 server_sans: Sequence[str] = SERVER_SANS) -> None:
        self._owns_dir = directory is None
        self.directory = Path(directory) if directory is not None else _make_scratch("etcd-pki-")
        self.ca: CertKey = generate_ca(ca_cn)
        self.ca_file = self.directory / "ca.crt"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_file.write_bytes(self.ca.cert_pem())
        self.server = issue_cert(self.ca, SERVER_CN, server_sans, server=True, client=True).write(
            self.directory, "server")
        self._clients: dict[str, CertFiles] = {}

    def client(self, user: str) -> CertFiles:
        """Client certificate files whose CN is ``user`` (issued once, then reused)."""
        files = self._clients.get(user)
        if files is None:
            files = issue_cert(self.ca, user, client=True).write(self.directory, f"client-{user}")
            self._clients[user] = files
        return files

    def issue(self, cn: str, prefix: str, *, not_after: dt.datetime | None = None,
              sans: Sequence[str] = ()) -> CertFiles:
        """A fresh client certificate (not cached), e.g. an expired one with ``not_after`` in the past."""
        return issue_cert(self.ca, cn, sans, client=True, not_after=not_after).write(self.directory, prefix)

    def client_config(self, user: str, endpoints: Sequence[str], path: str | Path | None = None) -> Path:
        """Write an etcd client YAML (the format ``etcd.config`` points at) for ``user``."""
        files = self.client(user)
        target = Path(path) if path is not None else self.directory / f"etcd-config-{user}.yaml"
        target.write_text(yaml.safe_dump({
            "endpoints": list(endpoints),
            "trusted-ca-file": str(self.ca_file),
            "cert-file": str(files.cert_file),
            "key-file": str(files.key_file),
        }))
        return target

    def cleanup(self) -> None:
        if self._owns_dir:
            shutil.rmtree(self.directory, ignore_errors=True)


_LIVE: weakref.WeakSet[EtcdServer] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for srv in list(_LIVE):
        srv.close_sync()


class EtcdServer:
    """One single-member etcd on loopback. See the module docstring.

    Lifecycle: ``start`` -> (``stop`` | ``kill``) -> ``start``/``restart`` ... -> ``close``.
    ``stop``/``kill`` keep the data dir and ports; ``close`` kills the process and removes every
    file. Usable as ``async with`` or plain ``with`` (both start on entry and close on exit).

    With ``auth=True`` the first start bootstraps RBAC through etcdctl: user ``root`` with role
    ``root`` (no password with TLS, where the certificate CN is the identity; ``root_password``
    without TLS), then enables auth.
    """

    def __init__(self, tls: EtcdTLS | None = None, auth: bool = False, *, name: str = "etcd-test",
                 root_password: str = "root-password", extra_args: Sequence[str] = (),
                 startup_timeout: float = 30.0) -> None:
        self._etcd, self._etcdctl = etcd_binaries()
        self.tls = tls
        self.auth = auth
        self.name = name
        self.root_password: str | None = None if tls is not None else root_password
        self.extra_args = tuple(extra_args)
        self.startup_timeout = startup_timeout
        _sweep_stale_scratch()
        self._base = _make_scratch("etcd-test-")
        self.data_dir = self._base / "data"
        self.log_file = self._base / "etcd.log"
        self._client_port, self._peer_port = free_ports(2)
        self._process: EtcdProcess | None = None
        self._auth_enabled = False
        self._started_once = False
        self._closed = False
        _LIVE.add(self)

    # -- addresses ---------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self._client_port}"

    @property
    def endpoint(self) -> str:
        return self.client_url

    @property
    def client_port(self) -> int:
        return self._client_port

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self._peer_port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.running else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    def etcd_config(self, user: str | None = ROOT_USER, **overrides: Any) -> EtcdConfig:
        """An ``EtcdConfig`` for the project's client: certificate files for ``user`` with TLS,
        root's password with password auth, nothing otherwise. ``overrides`` replace fields."""
        fields: dict[str, Any] = {"endpoints": (self.client_url,)}
        if self.tls is not None:
            fields["trusted_ca_file"] = str(self.tls.ca_file)
            if user is not None:
                files = self.tls.client(user)
                fields["cert_file"], fields["key_file"] = str(files.cert_file), str(files.key_file)
        elif self.auth and user == ROOT_USER:
            fields["username"], fields["password"] = ROOT_USER, self.root_password
        fields.update(overrides)
        return EtcdConfig(**fields)

    # -- etcdctl -----------------------------------------------------------------------------

    def etcdctl_args(self, user: str | None = ROOT_USER) -> list[str]:
        """The etcdctl command prefix talking to this server as ``user`` (None: anonymous)."""
        args = [self._etcdctl, f"--endpoints={self.client_url}", "--dial-timeout=2s", "--command-timeout=5s"]
        if self.tls is not None:
            args.append(f"--cacert={self.tls.ca_file}")
            if user is not None:
                files = self.tls.client(user)
                args += [f"--cert={files.cert_file}", f"--key={files.key_file}"]
        elif user is not None and self._auth_enabled:
            password = self.root_password if user == ROOT_USER else ""
            args.append(f"--user={user}:{password}")
        return args

    def etcdctl(self, *args: str, user: str | None = ROOT_USER, check: bool = True,
                timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Run etcdctl against this server (blocking); raises with its stderr if ``check`` and it fails."""
        proc = subprocess.run([*self.etcdctl_args(user), *args], capture_output=True, text=True,
                              env=_clean_env(), timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"etcdctl {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    async def etcdctl_async(self, *args: str, user: str | None = ROOT_USER, check: bool = True,
                            time_limit: float = 10.0) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(self.etcdctl, *args, user=user, check=check, timeout=time_limit)

    # -- process control ---------------------------------------------------------------------

    def _command(self) -> list[str]:
        cmd = [
            self._etcd, "--name", self.name, "--data-dir", str(self.data_dir),
            "--logger", "zap", "--log-level", "warn", "--log-outputs", "stderr",
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", f"{self.name}={self.peer_url}",
            # A single member has no peer to lose heartbeats to, so short raft timers are safe and
            # cut the first leader election (and thus start-up) from ~1 s to ~0.1 s.
            "--heartbeat-interval", "10", "--election-timeout", "100",
        ]
        if self.tls is not None:
            cmd += ["--cert-file", str(self.tls.server.cert_file), "--key-file", str(self.tls.server.key_file),
                    "--trusted-ca-file", str(self.tls.ca_file), "--client-cert-auth"]
        cmd += self.extra_args
        # If the test process dies without cleanup, the kernel kills etcd with it.
        return with_parent_death_signal(cmd)

    def _spawn(self) -> None:
        if self._closed:
            raise RuntimeError("EtcdServer is closed")
        if self.running:
            raise RuntimeError(f"etcd already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = EtcdProcess(self._command(), env=_clean_env())
        with open(self.log_file, "ab") as log:
            self._process.start(log)

    def _log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-limit:]
        except OSError:
            return "<no log>"

    def _probe(self) -> str | None:
        """One readiness attempt: None once a write went through, else the reason it did not."""
        if self._process is None or not self._process.running:
            return "etcd is not running"
        try:
            # etcd also serves the client API on its *peer* port: if our client port is another
            # running etcd's peer port, that etcd answers until our process dies of "address in
            # use". Only a member list naming our own client URL proves the answer is ours (the peer
            # URL would not do: a data dir made by etcdinit keeps the peer URL it was created with).
            # Short timeouts: etcdctl otherwise retries a refused connection for its whole timeout.
            members = self.etcdctl("member", "list", "-w", "json", "--dial-timeout=300ms",
                                   "--command-timeout=500ms", check=False, timeout=5.0)
            if members.returncode != 0:
                return members.stderr.strip() or f"etcdctl exited {members.returncode}"
            client_urls = {url for member in json.loads(members.stdout).get("members", [])
                           for url in member.get("clientURLs", [])}
            if self.client_url not in client_urls:
                return f"another etcd answers on {self.client_url} (port clash)"
            put = self.etcdctl("put", _PROBE_KEY, "1", "--dial-timeout=300ms", "--command-timeout=500ms",
                               check=False, timeout=5.0)
        except subprocess.TimeoutExpired:
            return "etcdctl timed out"
        if put.returncode != 0:
            return put.stderr.strip() or f"etcdctl exited {put.returncode}"
        self.etcdctl("del", _PROBE_KEY)
        return None

    def _check_alive(self, deadline: float, last_error: str | None) -> None:
        assert self._process is not None
        code = self._process.returncode
        if code is not None:
            if not self._started_once and "address already in use" in self._log_tail():
                raise _PortTakenError("port taken")
            raise EtcdStartError(f"etcd exited with code {code} during start-up:\n{self._log_tail()}")
        if time.monotonic() > deadline:
            self._hard_kill()
            raise EtcdStartError(f"etcd did not accept writes within {self.startup_timeout}s "
                                 f"(last error: {last_error}):\n{self._log_tail()}")

    def _bootstrap_auth(self) -> None:
        if self.tls is not None:
            self.etcdctl("user", "add", ROOT_USER, "--no-password")
        else:
            self.etcdctl("user", "add", ROOT_USER, f"--new-user-password={self.root_password}")
        self.etcdctl("user", "grant-role", ROOT_USER, "root")
        self.etcdctl("auth", "enable")
        self._auth_enabled = True

    def _new_ports(self) -> None:
        self._wipe()
        self.log_file.unlink(missing_ok=True)
        self._client_port, self._peer_port = free_ports(2)

    def _wait_ready(self) -> None:
        """Block until a write succeeds (any thread); ``_PortTakenError`` if another etcd won the port."""
        deadline = time.monotonic() + self.startup_timeout
        while (error := self._probe()) is not None:
            self._check_alive(deadline, error)
            time.sleep(0.05)

    def _port_clash(self, attempt: int) -> None:
        if attempt == _PORT_ATTEMPTS - 1:
            raise _PortTakenError(f"ports still taken after {_PORT_ATTEMPTS} attempts")
        self._new_ports()

    def start_sync(self) -> EtcdServer:
        """Start etcd and block until a write succeeds (and auth is bootstrapped when asked)."""
        for attempt in range(_PORT_ATTEMPTS):
            self._spawn()
            try:
                self._wait_ready()
                break
            except _PortTakenError:
                self._port_clash(attempt)
        self._started_once = True
        if self.auth and not self._auth_enabled:
            self._bootstrap_auth()
        return self

    async def start(self) -> EtcdServer:
        """``start_sync`` without blocking the loop: etcd is spawned from the calling thread (its
        parent-death signal is tied to that thread), the readiness probes run in a worker thread."""
        for attempt in range(_PORT_ATTEMPTS):
            self._spawn()
            try:
                await asyncio.to_thread(self._wait_ready)
                break
            except _PortTakenError:
                self._port_clash(attempt)
        self._started_once = True
        if self.auth and not self._auth_enabled:
            await asyncio.to_thread(self._bootstrap_auth)
        return self

    def _hard_kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    def stop_sync(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the data dir is kept."""
        if self._process is not None:
            self._process.stop_sync(grace)

    def kill_sync(self) -> None:
        """SIGKILL (a crash): no clean shutdown, the data dir is kept."""
        self._hard_kill()

    async def stop(self, grace: float = 10.0) -> None:
        if self._process is not None:
            await self._process.stop(grace)

    async def kill(self) -> None:
        # SIGKILL returns at once; waiting for the zombie is instant too, so no thread needed.
        self._hard_kill()

    def _wipe(self) -> None:
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self._auth_enabled = False

    def restart_sync(self, wipe: bool = False) -> EtcdServer:
        self.stop_sync()
        if wipe:
            self._wipe()
        return self.start_sync()

    async def restart(self, wipe: bool = False) -> EtcdServer:
        await self.stop()
        if wipe:
            self._wipe()
        return await self.start()

    def close_sync(self) -> None:
        """Kill the process (if any) and remove the data dir and log. Idempotent."""
        self._hard_kill()
        self._closed = True
        shutil.rmtree(self._base, ignore_errors=True)
        _LIVE.discard(self)

    async def close(self) -> None:
        self.close_sync()

    # -- context managers --------------------------------------------------------------------

    def __enter__(self) -> EtcdServer:
        try:
            return self.start_sync()
        except BaseException:
            self.close_sync()
            raise

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close_sync()

    async def __aenter__(self) -> EtcdServer:
        try:
            return await self.start()
        except BaseException:
            self.close_sync()
            raise

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close_sync()

    def __repr__(self) -> str:
        return f"EtcdServer({self.client_url}, pid={self.pid}, auth={self.auth})"

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._hard_kill()
