"""Real kubectl writing built-in kinds as protobuf (its default), compared byte for byte, through
``kubectl get -o json``, with the same object sent as JSON."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from apiserver.security.pki import generate_ca
from localmesh.kubesim import KubeSim
from tests.localmesh.conftest import Kubectl

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
PROTOBUF_REQUEST = "Content-Type: application/vnd.kubernetes.protobuf"
# Fields the server fills per object: they differ between the two copies by design.
VOLATILE_META = ("uid", "resourceVersion", "creationTimestamp", "namespace", "managedFields")


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) + b"\x00\xff\xfe not utf-8 \x80")
    written = generate_ca("proto").write(tmp_path, "tls")
    return {"binary": binary, "key": written.key_file, "cert": written.cert_file}


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


UPDATES = [
    pytest.param(["configmap", "cfg", "--from-literal=a=1"],
                 ["configmap", "cfg", "--from-literal=a=2", "--from-file=empty=/dev/null"],
                 ["configmap", "cfg", "--from-literal=a=3", "--from-literal=b=4"], "configmaps", "configmap/cfg",
                 lambda o: o["data"], {"a": "2", "empty": ""}, {"a": "3", "b": "4"}, id="configmap"),
    pytest.param(["deployment", "web", "--image=img:1"],
                 ["deployment", "web", "--image=img:2", "--replicas=3", "--port=9962"],
                 ["deployment", "web", "--image=img:3", "--replicas=0"], "deployments", "deployment.apps/web",
                 lambda o: (o["spec"]["replicas"], o["spec"]["template"]["spec"]["containers"][0]["image"]),
                 (3, "img:2"), (0, "img:3"), id="deployment"),
]


async def _put(sim: KubeSim, path: str, body: bytes, content_type: str) -> None:
    async with aiohttp.ClientSession() as http, http.put(
            sim.url + path, data=body, headers={"Content-Type": content_type, "Accept": "application/json"}) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize(("first", "second", "third", "plural", "ref", "probe", "after_update", "after_replace"),
                         UPDATES)
async def test_update_and_replace_protobuf_equals_json(
        kubesim: KubeSim, kubectl: Kubectl, tmp_path: Path, first: list[str], second: list[str], third: list[str],
        plural: str, ref: str, probe: Callable[[dict[str, Any]], Any], after_update: Any, after_replace: Any) -> None:
    for ns in ("via-json", "via-proto"):
        kubesim.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    group = "/apis/apps/v1" if plural == "deployments" else "/api/v1"
    name = ref.split("/")[1]

    async def compare() -> dict[str, Any]:
        via_json = json.loads((await kubectl("get", ref, "-n", "via-json", "-o", "json")).out)
        via_proto = json.loads((await kubectl("get", ref, "-n", "via-proto", "-o", "json")).out)
        assert json.dumps(_normalized(via_proto), indent=4) == json.dumps(_normalized(via_json), indent=4)
        return via_proto

    assert (await kubectl("create", *first, "-n", "via-proto")).code == 0
    dry = await kubectl("create", *first, "--dry-run=client", "-o", "json")
    await _post_json(kubesim, f"{group}/namespaces/via-json/{plural}", json.loads(dry.out))
    await compare()

    # An update in protobuf with the exact bytes Go's encoder wrote: kubectl's own, from its -v=9 log of a
    # server-side dry run; the same object goes to the other namespace as JSON.
    logged = await kubectl("create", *second, "-n", "via-proto", "--dry-run=server", "-v=9")
    body = _logged_request_body(logged.err)
    assert body.startswith(b"k8s\x00")
    await _put(kubesim, f"{group}/namespaces/via-proto/{plural}/{name}", body, "application/vnd.kubernetes.protobuf")
    as_json = (await kubectl("create", *second, "--dry-run=client", "-o", "json")).out.encode()
    await _put(kubesim, f"{group}/namespaces/via-json/{plural}/{name}", as_json, "application/json")
    assert probe(await compare()) == after_update

    # kubectl replace -f of a changed object, in both namespaces.
    manifest = tmp_path / "changed.yaml"
    manifest.write_text((await kubectl("create", *third, "--dry-run=client", "-o", "yaml")).out)
    for ns in ("via-json", "via-proto"):
        replaced = await kubectl("replace", "-f", str(manifest), "-n", ns)
        assert replaced.code == 0 and replaced.out.strip() == f"{ref} replaced", replaced.err
    assert probe(await compare()) == after_replace


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
