"""The exporter as a child process (``python -m apiserver clustermesh``), with its probes read over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from bench._dataset import BenchShape
from bench._procs import Child
from localmesh.testing.ports import free_port

_POLL = 0.02
BOOTSTRAP_METRIC = "cilium_clustermesh_apiserver_bootstrap_seconds"


class ExporterProcess:
    def __init__(self, shape: BenchShape, etcd_endpoint: str, kubeconfig: Path, log_path: Path,
                 kvstore_opts: Sequence[str] = ()) -> None:
        self.health_port = free_port()
        self.metrics_port = free_port()
        args = ["-m", "apiserver", "clustermesh", "--cluster-name", shape.name,
                "--cluster-id", str(shape.cluster_id), "--kvstore-opt", f"etcd.address={etcd_endpoint}",
                "--k8s-kubeconfig-path", str(kubeconfig), "--health-port", str(self.health_port),
                "--prometheus-serve-addr", f"127.0.0.1:{self.metrics_port}"]
        for opt in kvstore_opts:
            args += ["--kvstore-opt", opt]
        self.child = Child("exporter", args, log_path)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        await self.child.start()

    async def wait_ready(self, timeout: float) -> float:
        """Poll ``/readyz`` until 200; returns the monotonic time it first answered 200."""
        assert self._session is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        url = f"http://127.0.0.1:{self.health_port}/readyz"
        while True:
            self.child.check_alive()
            try:
                async with self._session.get(url) as resp:
                    if resp.status == 200:
                        return loop.time()
            except aiohttp.ClientError:
                pass  # not listening yet
            if loop.time() > deadline:
                raise RuntimeError(f"exporter not ready within {timeout:g}s\n{self.child.log_tail()}")
            await asyncio.sleep(_POLL)

    async def bootstrap_seconds(self) -> float:
        """Exporter.start() -> ready, as the exporter measured it (its bootstrap metric)."""
        assert self._session is not None
        async with self._session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith(BOOTSTRAP_METRIC + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise RuntimeError(f"{BOOTSTRAP_METRIC} not exported")

    async def stop(self) -> None:
        await self.child.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
