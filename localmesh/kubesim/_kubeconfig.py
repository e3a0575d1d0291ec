"""Kubeconfig documents for the emulator (pure), readable by kubectl and kubernetes-asyncio."""

from __future__ import annotations

import base64
from typing import Any

CONTEXT = "kubesim"


def kubeconfig(server: str, *, ca_pem: bytes | None = None, namespace: str = "default",
               token: str = "kubesim") -> dict[str, Any]:
    """One cluster/user/context named ``kubesim``. Over https the CA is embedded when known."""
    cluster: dict[str, Any] = {"server": server}
    if server.startswith("https://"):
        if ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
        else:
            cluster["insecure-skip-tls-verify"] = True
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "current-context": CONTEXT,
        "clusters": [{"name": CONTEXT, "cluster": cluster}],
        "users": [{"name": CONTEXT, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT,
                                                     "namespace": namespace}}],
    }
