"""A 3-member etcd cluster on loopback (three processes, data on tmpfs), for the quorum faults.

Members can be killed (SIGKILL) and started again with their data; ``leader()`` asks the members
which of them leads. Everything started here is killed and removed by ``close()``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from localmesh.testing.etcd import etcd_binaries
from localmesh.testing.ports import free_ports


class EtcdCluster:
    def __init__(self, size: int = 3, token: str = "faults") -> None:
        self._etcd, _ = etcd_binaries()
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.base = Path(tempfile.mkdtemp(prefix="etcd-cluster-", dir=shm))
        ports = free_ports(2 * size)
        self.names = [f"m{i}" for i in range(size)]
        self.client_urls = [f"http://127.0.0.1:{ports[2 * i]}" for i in range(size)]
        self.peer_urls = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(size)]
        self.listen_peer_urls = list(self.peer_urls)  # differs where a proxy holds the advertised port
        self.token = token
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size

    @property
    def endpoints(self) -> list[str]:
        return list(self.client_urls)

    def _command(self, i: int) -> list[str]:
        initial = ",".join(f"{n}={u}" for n, u in zip(self.names, self.peer_urls, strict=True))
        cmd = [self._etcd, "--name", self.names[i], "--data-dir", str(self.base / self.names[i]),
               "--logger", "zap", "--log-level", "warn", "--log-outputs", "stderr",
               "--listen-client-urls", self.client_urls[i], "--advertise-client-urls", self.client_urls[i],
               "--listen-peer-urls", self.listen_peer_urls[i], "--initial-advertise-peer-urls", self.peer_urls[i],
               "--initial-cluster", initial, "--initial-cluster-token", self.token,
               "--initial-cluster-state", "new"]
        setpriv = shutil.which("setpriv")
        return [setpriv, "--pdeathsig", "KILL", "--", *cmd] if setpriv else cmd

    def start_member(self, i: int) -> None:
        assert self.procs[i] is None or self.procs[i].poll() is not None  # type: ignore[union-attr]
        with open(self.base / f"{self.names[i]}.log", "ab") as log:
            self.procs[i] = subprocess.Popen(self._command(i), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             start_new_session=True)

    def kill_member(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    async def start(self) -> EtcdCluster:
        for i in range(len(self.names)):
            self.start_member(i)
        await self.wait_leader()
        return self

    async def _status(self, i: int) -> tuple[int, int] | None:
        """(member ID, leader ID) as member ``i`` sees it; None if it does not answer."""
        try:
            client = await EtcdClient.connect(EtcdConfig(endpoints=(self.client_urls[i],)), timeout=2.0)
        except Exception:
            return None
        try:
            status = await client.status()
            return status.member_id, status.leader
        except Exception:
            return None
        finally:
            await client.close()

    async def leader(self) -> int | None:
        """The index of the member every live member names as leader, if they agree."""
        seen = [await self._status(i) for i in range(len(self.names))]
        live = [s for s in seen if s is not None]
        leaders = {leader for _, leader in live}
        if len(leaders) != 1 or 0 in leaders:
            return None
        (leader,) = leaders
        return next((i for i, s in enumerate(seen) if s is not None and s[0] == leader), None)

    async def wait_leader(self, deadline: float = 120.0) -> int:
        loop = asyncio.get_running_loop()
        until = loop.time() + deadline
        while True:
            found = await self.leader()
            if found is not None:
                return found
            if loop.time() > until:
                raise AssertionError(f"no etcd leader within {deadline:g}s")
            await asyncio.sleep(0.1)

    def close(self) -> None:
        for i in range(len(self.names)):
            self.kill_member(i)
        shutil.rmtree(self.base, ignore_errors=True)
