"""``doctor``: read every cluster's facts and run the guide's prerequisite checks on them.

Beyond the pure checks it measures one thing itself: a TLS handshake with each enabled mesh API
server, at its access address, as a peer's KVStoreMesh would make it (server name
``<cluster>.mesh.cilium.io``, the cluster's remote client certificate, its CA).
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import tempfile
from collections.abc import Callable, Sequence

from apiserver.ctl._access import AccessInfo
from apiserver.ctl._cluster import access_info, cilium_config, kvstoremesh_enabled
from apiserver.ctl._doctor import Check, ClusterFacts, DoctorReport, facts_from, prerequisite_checks
from apiserver.ctl._errors import CtlError
from apiserver.ctl._kube import Kube
from apiserver.ctl._names import DEPLOYMENT, INFO, MESH_DOMAIN, REMOTE_SECRET
from apiserver.kube import KubeAPIError

Log = Callable[[str], None]
HANDSHAKE_TIMEOUT = 5.0


def _client_context(ca: bytes, cert: bytes, key: bytes) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca.decode())
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads files only
        cert_file, key_file = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        with open(cert_file, "wb") as f:
            f.write(cert)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        context.load_cert_chain(cert_file, key_file)
    return context


async def handshake(host: str, port: int, server_name: str, context: ssl.SSLContext) -> str:
    """"" when a TLS handshake with ``host:port`` as ``server_name`` succeeds, else why not."""
    try:
        async with asyncio.timeout(HANDSHAKE_TIMEOUT):
            _, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_name)
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, OSError):
            pass
    except TimeoutError:
        return f"no answer within {HANDSHAKE_TIMEOUT:g}s"
    except ssl.SSLCertVerificationError as exc:
        return f"certificate not trusted: {exc.verify_message}"
    except (ssl.SSLError, OSError) as exc:
        return str(exc) or type(exc).__name__
    return ""


async def reachability(kube: Kube, namespace: str, info: AccessInfo) -> tuple[str, str]:
    """(endpoint, failure or "") of the first access address."""
    endpoint = f"{info.service_ips[0]}:{info.service_port}"
    secret = await kube.get("v1", "Secret", REMOTE_SECRET, namespace)
    if secret is None:
        return endpoint, f'secret "{REMOTE_SECRET}" not found'
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    try:
        context = _client_context(info.ca, data["tls.crt"], data["tls.key"])
    except (KeyError, ssl.SSLError, ValueError) as exc:
        return endpoint, f"unusable client certificate in {REMOTE_SECRET}: {exc}"
    host = info.service_ips[0]
    return endpoint, await handshake(host, info.service_port, f"{info.cluster_name}.{MESH_DOMAIN}", context)


async def cluster_facts(kube: Kube, namespace: str) -> ClusterFacts | Check:
    try:
        config = await cilium_config(kube, namespace)
    except CtlError as exc:
        return Check(f"cilium-config of context {kube.context!r}", False, (exc.message,), exc.hint)
    try:
        nodes = await kube.list("cilium.io/v2", "CiliumNode")
    except KubeAPIError:
        nodes = []
    kvstoremesh: bool | None = None
    reach: str | None = ""  # not measured
    endpoint = ""
    if await kube.get("apps/v1", "Deployment", DEPLOYMENT, namespace) is not None:
        kvstoremesh = await kvstoremesh_enabled(kube, namespace)
        try:
            info = await access_info(kube, namespace)
            endpoint, failure = await reachability(kube, namespace, info)
            reach = failure or None
        except CtlError as exc:
            reach = exc.message
    return facts_from(kube.context, config, nodes, kvstoremesh=kvstoremesh, reachability=reach, endpoint=endpoint)


async def doctor(kubes: Sequence[Kube], namespace: str, log: Log) -> int:
    if len(kubes) < 2:
        raise CtlError("doctor needs at least two clusters", "pass --context A --context B ...")
    facts: list[ClusterFacts] = []
    report = DoctorReport(len(kubes))
    for kube in kubes:
        result = await cluster_facts(kube, namespace)
        if isinstance(result, Check):
            report.checks.append(result)
        else:
            facts.append(result)
            log(f"{INFO} {kube.context}: cluster {result.name} (id {result.id}), {result.datapath}, Pod CIDRs "
                f"{' '.join(result.pod_cidrs) or 'none'}")
    report.checks += prerequisite_checks(facts)
    for line in report.lines():
        log(line)
    return 0 if report.ok else 1
