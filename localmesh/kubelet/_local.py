"""A local kubelet for an in-process kubesim: its client from the emulator's kubeconfig, the emulator's CA
as the pods' ``ca.crt``, the emulator's port as their API server, and the emulator served (logs, exec,
graceful deletion). Used by ``clustermesh-apiserver kubesim --kubelet`` and the tests."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from apiserver.kube import KubeOptions, build_client
from localmesh.kubelet._config import KubeletConfig
from localmesh.kubelet._kubelet import Kubelet
from localmesh.kubesim import KubeSim


@asynccontextmanager
async def local_kubelet(sim: KubeSim, *, node_name: str, workdir: Path, **config: Any) -> AsyncIterator[Kubelet]:
    """A started kubelet for node ``node_name`` of ``sim`` (started); ``config``: more ``KubeletConfig``."""
    kubeconfig = sim.write_kubeconfig(workdir / f"{node_name}.kubeconfig")
    cluster = sim.kubeconfig()["clusters"][0]["cluster"]
    ca = base64.b64decode(cluster.get("certificate-authority-data") or "")
    client = await build_client(KubeOptions(kubeconfig_path=str(kubeconfig)))
    try:
        kubelet = Kubelet(client.api_client, KubeletConfig(node_name=node_name, api_ca_pem=ca, **config),
                          api_address=(urlsplit(sim.url).hostname or "127.0.0.1", sim.port))
        kubelet.serve(sim)
        await kubelet.start()
        try:
            yield kubelet
        finally:
            await kubelet.stop()
    finally:
        await client.close()
