"""Real kubectl writing built-in kinds as protobuf (its default), compared byte for byte, through
``kubectl get -o json``, with the same object sent as JSON."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from localmesh.kubesim import KubeSim

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
PROTOBUF_REQUEST = "Content-Type: application/vnd.kubernetes.protobuf"
# Fields the server fills per object: they differ between the two copies by design.
VOLATILE_META = ("uid", "resourceVersion", "creationTimestamp", "namespace", "managedFields")


@dataclass
class Result:
    code: int
    out: str
    err: str


Kubectl = Callable[..., Coroutine[Any, Any, Result]]


@pytest.fixture
def kubectl(kubeconfig_path: Path, tmp_path: Path) -> Kubectl:
    async def run(*args: str, stdin: bytes | None = None) -> Result:
        assert KUBECTL is not None
        proc = await asyncio.create_subprocess_exec(
            KUBECTL, f"--kubeconfig={kubeconfig_path}", f"--cache-dir={tmp_path / 'cache'}", *args,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={"HOME": str(tmp_path)})
        async with asyncio.timeout(30):
            out, err = await proc.communicate(stdin)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    return run


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) + b"\x00\xff\xfe not utf-8 \x80")
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=proto"],
                   check=True, capture_output=True)
    return {"binary": binary, "key": key, "cert": cert}


def _normalized(doc: dict[str, Any]) -> dict[str, Any]:
    meta = doc["metadata"]
    for name in VOLATILE_META:
        meta.pop(name, None)
    spec = doc.get("spec")
    if doc["kind"] == "Service" and isinstance(spec, dict):
        # Allocated per Service by the server.
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
        for port in spec.get("ports", []):
            port.pop("nodePort", None)
    return doc


async def _post_json(sim: KubeSim, path: str, doc: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.post(sim.url + path, json=doc) as resp:
        assert resp.status == 201, await resp.text()


GENERATORS = [
    pytest.param(["secret", "generic", "s", "--from-literal=user=admin", "--from-file=blob={binary}"],
                 "secrets", "secret/s", id="secret-generic"),
    pytest.param(["secret", "tls", "t", "--cert={cert}", "--key={key}"], "secrets", "secret/t", id="secret-tls"),
    pytest.param(["configmap", "c", "--from-literal=a=b", "--from-file=blob={binary}"], "configmaps",
                 "configmap/c", id="configmap-binaryData"),
    pytest.param(["service", "clusterip", "web", "--tcp=80:8080", "--tcp=443:8443"], "services", "service/web",
                 id="service-clusterip"),
    pytest.param(["service", "nodeport", "np", "--tcp=80:8080"], "services", "service/np", id="service-nodeport"),
    pytest.param(["service", "loadbalancer", "lb", "--tcp=2379:2379"], "services", "service/lb",
                 id="service-loadbalancer"),
    pytest.param(["deployment", "d", "--image=quay.io/x/y:1", "--replicas=2", "--port=2379"], "deployments",
                 "deployment.apps/d", id="deployment"),
]


@pytest.mark.parametrize(("args", "plural", "ref"), GENERATORS)
async def test_create_protobuf_equals_json(kubesim: KubeSim, kubectl: Kubectl, files: dict[str, Path],
                                           args: list[str], plural: str, ref: str) -> None:
    for ns in ("via-json", "via-proto"):
        kubesim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in args]
    dry = await kubectl("create", *argv, "-n", "via-json", "--dry-run=client", "-o", "json")
    assert dry.code == 0, dry.err
    group = "/apis/apps/v1" if plural == "deployments" else "/api/v1"
    await _post_json(kubesim, f"{group}/namespaces/via-json/{plural}", json.loads(dry.out))

    created = await kubectl("create", *argv, "-n", "via-proto", "-v=8")
    assert created.code == 0, created.err
    assert PROTOBUF_REQUEST in created.err  # kubectl did send protobuf
    assert f"{ref} created" in created.out

    via_json = await kubectl("get", ref, "-n", "via-json", "-o", "json")
    via_proto = await kubectl("get", ref, "-n", "via-proto", "-o", "json")
    assert via_json.code == via_proto.code == 0, via_json.err + via_proto.err
    assert (json.dumps(_normalized(json.loads(via_proto.out)), indent=4)
            == json.dumps(_normalized(json.loads(via_json.out)), indent=4))


async def test_binary_secret_and_configmap_bytes(kubesim: KubeSim, kubectl: Kubectl, files: dict[str, Path]) -> None:
    blob = files["binary"].read_bytes()
    assert (await kubectl("create", "secret", "generic", "bin", f"--from-file=blob={files['binary']}")).code == 0
    assert (await kubectl("create", "configmap", "bin", f"--from-file=blob={files['binary']}")).code == 0
    secret = kubesim.get("v1", "Secret", "bin", "default")
    configmap = kubesim.get("v1", "ConfigMap", "bin", "default")
    assert secret is not None and configmap is not None
    assert base64.b64decode(secret["data"]["blob"]) == blob
    assert base64.b64decode(configmap["binaryData"]["blob"]) == blob  # not valid UTF-8: kubectl uses binaryData
    assert "data" not in configmap


async def test_namespace(kubesim: KubeSim, kubectl: Kubectl) -> None:
    created = await kubectl("create", "namespace", "mesh", "-v=8")
    assert created.code == 0 and PROTOBUF_REQUEST in created.err, created.err
    got = json.loads((await kubectl("get", "namespace", "mesh", "-o", "json")).out)
    assert set(got) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert got["metadata"]["name"] == "mesh" and got["status"] == {"phase": "Active"}


def _logged_request_body(log: str) -> bytes:
    """The request body kubectl -v=9 logs as a hex dump (``"Request Body" body=<`` ... ``>``)."""
    lines = log.split('"Request Body" body=<', 1)[1].split("\n >", 1)[0].splitlines()
    octets = [line.split("  ", 1)[1].split("|", 1)[0] for line in lines if line.strip()]
    return bytes.fromhex("".join(octets))


async def test_replace_and_protobuf_update(kubesim: KubeSim, kubectl: Kubectl, tmp_path: Path) -> None:
    assert (await kubectl("create", "configmap", "cfg", "--from-literal=a=1")).code == 0
    changed = await kubectl("create", "configmap", "cfg", "--from-literal=a=2", "--from-literal=b=3",
                            "--dry-run=client", "-o", "yaml")
    manifest = tmp_path / "cfg.yaml"
    manifest.write_text(changed.out)
    replaced = await kubectl("replace", "-f", str(manifest))
    assert replaced.code == 0 and replaced.out.strip() == "configmap/cfg replaced", replaced.err
    got = json.loads((await kubectl("get", "configmap", "cfg", "-o", "json")).out)
    assert got["data"] == {"a": "2", "b": "3"}

    # An update in protobuf, with the exact bytes Go's encoder wrote (kubectl's own, from its -v=9 log).
    dry = await kubectl("create", "configmap", "cfg", "--from-literal=a=4", "--from-file=bin=/dev/null",
                        "--dry-run=server", "-v=9")
    body = _logged_request_body(dry.err)
    assert body.startswith(b"k8s\x00")
    async with aiohttp.ClientSession() as http, http.put(
            kubesim.url + "/api/v1/namespaces/default/configmaps/cfg", data=body,
            headers={"Content-Type": "application/vnd.kubernetes.protobuf", "Accept": "application/json"}) as resp:
        assert resp.status == 200, await resp.text()
        answer = await resp.json()
    assert answer["data"] == {"a": "4", "bin": ""}
    assert answer["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]
    expected = await kubectl("create", "configmap", "cfg", "--from-literal=a=4", "--from-file=bin=/dev/null",
                             "--dry-run=client", "-o", "json")
    stored = json.loads((await kubectl("get", "configmap", "cfg", "-o", "json")).out)
    assert _normalized(stored)["data"] == json.loads(expected.out)["data"]


async def test_apply_server_side_and_patch_after_protobuf_create(kubesim: KubeSim, kubectl: Kubectl,
                                                                 tmp_path: Path) -> None:
    assert (await kubectl("create", "deployment", "web", "--image=img:1", "--replicas=1")).code == 0
    patched = await kubectl("patch", "deployment", "web", "-p", '{"spec":{"replicas":3}}')
    assert patched.code == 0, patched.err
    merge = await kubectl("patch", "deployment", "web", "--type=merge", "-p", '{"metadata":{"labels":{"x":"y"}}}')
    assert merge.code == 0, merge.err
    stored = kubesim.get("apps/v1", "Deployment", "web", "default")
    assert stored is not None and stored["spec"]["replicas"] == 3 and stored["metadata"]["labels"]["x"] == "y"
    manifest = tmp_path / "svc.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
                        "spec: {ports: [{port: 80}], selector: {app: web}}\n")
    applied = await kubectl("apply", "--server-side", "-f", str(manifest))
    assert applied.code == 0, applied.err
    svc = kubesim.get("v1", "Service", "web", "default")
    assert svc is not None and svc["spec"]["selector"] == {"app": "web"}
