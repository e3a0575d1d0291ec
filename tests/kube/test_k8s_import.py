"""The deferred import of kubernetes-asyncio (``apiserver/kube/_k8s_import.py``) on the pinned version:
the configuration loaders and ``ApiClient`` load without the generated models, which still work on
first use."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version

PROBE = """
import asyncio, json, sys
import apiserver.kube
before = sorted(m for m in sys.modules if m.startswith("kubernetes_asyncio.client.models."))
from apiserver.kube._k8s_import import k8s_client, k8s_config
cfg = k8s_client.Configuration()
cfg.host = "http://127.0.0.1:1"
async def make():
    api = k8s_client.ApiClient(cfg)
    await api.close()
    return api
api = asyncio.run(make())
core = k8s_client.CoreV1Api  # a generated class: the real package __init__ runs now
after = sum(1 for m in sys.modules if m.startswith("kubernetes_asyncio.client.models."))
print(json.dumps({"before": len(before), "after": after, "loader": hasattr(k8s_config, "load_kube_config"),
                  "core": core.__name__, "api": type(api).__name__}))
"""


def test_pinned_version_is_the_one_tested() -> None:
    major, minor = (int(p) for p in version("kubernetes_asyncio").split(".")[:2])
    assert (major, minor) >= (36, 1) and major < 37


def test_deferred_import_loads_no_models_until_used() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] == 0
    assert result["after"] > 100  # the generated models, loaded on demand
    assert result["loader"] and result["core"] == "CoreV1Api" and result["api"] == "ApiClient"
