"""check_api: GET /version through the configured client."""

from __future__ import annotations

import aiohttp
import pytest
from kubernetes_asyncio.client import ApiClient, Configuration

from apiserver.kube import KubeClient, check_api
from localmesh.kubesim import KubeSim


async def test_check_api_ok(kube: KubeClient) -> None:
    await check_api(kube.api_client)


async def test_check_api_unreachable(unused_tcp_port: int) -> None:
    cfg = Configuration()
    cfg.host = f"http://127.0.0.1:{unused_tcp_port}"
    async with ApiClient(cfg) as api:
        with pytest.raises(aiohttp.ClientConnectionError):
            await check_api(api, request_timeout=2)


async def test_check_api_hanging_server_times_out(kubesim: KubeSim, kube: KubeClient) -> None:
    kubesim.faults.pause()
    try:
        with pytest.raises(TimeoutError):
            await check_api(kube.api_client, request_timeout=0.2)
    finally:
        kubesim.faults.resume()
