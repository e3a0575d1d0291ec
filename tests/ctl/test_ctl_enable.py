"""enable / disable against emulated clusters over real HTTP."""

from __future__ import annotations

import base64

from cryptography import x509

from tests.ctl.conftest import MANIFESTS, NS, Clusters

EXPECTED_SECRETS = {"clustermesh-apiserver-server-cert": "clustermesh-apiserver.cilium.io",
                    "clustermesh-apiserver-admin-cert": "admin-cluster1",
                    "clustermesh-apiserver-remote-cert": "remote",
                    "clustermesh-apiserver-local-cert": "local-cluster1"}


def cert_of(secret: dict[str, object]) -> x509.Certificate:
    data = secret["data"]
    assert isinstance(data, dict)
    return x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))


async def test_enable_creates_ca_certificates_and_the_pod(clusters: Clusters) -> None:
    result = await clusters.enable("cluster1")
    assert result.code == 0, result.err
    assert result.lines[-1] == ("✅ ClusterMesh enabled in cluster cluster1 (context cluster1): Service type "
                                "LoadBalancer, KVStoreMesh enabled")
    ca_secret = clusters.obj("cluster1", "Secret", "cilium-ca")
    assert ca_secret is not None
    ca = x509.load_pem_x509_certificate(base64.b64decode(ca_secret["data"]["ca.crt"]))
    for name, cn in EXPECTED_SECRETS.items():
        secret = clusters.obj("cluster1", "Secret", name)
        assert secret is not None and secret["type"] == "kubernetes.io/tls"
        cert = cert_of(secret)
        assert cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value == cn
        assert cert.issuer == ca.subject
    sans = cert_of(clusters.obj("cluster1", "Secret", "clustermesh-apiserver-server-cert") or {}).extensions\
        .get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"clustermesh-apiserver.cilium.io", "*.mesh.cilium.io", f"clustermesh-apiserver.{NS}.svc"} <= set(
        sans.get_values_for_type(x509.DNSName))
    svc = clusters.obj("cluster1", "Service", "clustermesh-apiserver")
    assert svc is not None and svc["spec"]["type"] == "LoadBalancer"
    deploy = clusters.obj("cluster1", "Deployment", "clustermesh-apiserver", "apps/v1")
    assert deploy is not None
    names = [c["name"] for c in deploy["spec"]["template"]["spec"]["containers"]]
    assert names == ["etcd", "apiserver", "kvstoremesh"]
    assert clusters.obj("cluster1", "ServiceAccount", "clustermesh-apiserver") is not None
    assert clusters.sim("cluster1").get("rbac.authorization.k8s.io/v1", "ClusterRole", "clustermesh-apiserver")


async def test_enable_is_idempotent_and_reuses_the_ca(clusters: Clusters) -> None:
    assert (await clusters.enable("cluster1")).code == 0
    before = {s["metadata"]["name"]: s["metadata"]["resourceVersion"]
              for s in clusters.sim("cluster1").list("v1", "Secret", NS)}
    deploy_rv = clusters.obj("cluster1", "Deployment", "clustermesh-apiserver", "apps/v1")["metadata"]  # type: ignore[index]
    again = await clusters.enable("cluster1")
    assert again.code == 0 and "🔑 Using the existing CA in Secret cilium-ca" in again.lines
    after = {s["metadata"]["name"]: s["metadata"]["resourceVersion"]
             for s in clusters.sim("cluster1").list("v1", "Secret", NS)}
    assert after == before  # no certificate re-issued
    rv = clusters.obj("cluster1", "Deployment", "clustermesh-apiserver", "apps/v1")["metadata"]  # type: ignore[index]
    assert rv["resourceVersion"] == deploy_rv["resourceVersion"]


async def test_enable_without_kvstoremesh_and_nodeport(clusters: Clusters) -> None:
    result = await clusters.run("enable", "--context", "cluster2", "--service-type=NodePort", "--kvstore-mesh=false",
                                "--manifests", str(clusters.kubeconfig.parent / "nothing"))
    assert result.code == 1 and "manifest directory" in result.err
    result = await clusters.run("enable", "--context", "cluster2", "--service-type=NodePort", "--kvstore-mesh=false",
                                "--manifests", str(MANIFESTS))
    assert result.code == 0, result.err
    assert "⚠️ Using service type NodePort may fail when nodes are removed from the cluster!" in result.lines
    deploy = clusters.obj("cluster2", "Deployment", "clustermesh-apiserver", "apps/v1")
    pod = deploy["spec"]["template"]["spec"]  # type: ignore[index]
    assert [c["name"] for c in pod["containers"]] == ["etcd", "apiserver"]
    assert "kvstoremesh-secrets" not in [v["name"] for v in pod["volumes"]]
    svc = clusters.obj("cluster2", "Service", "clustermesh-apiserver")
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["ports"][0]["nodePort"] == 32379  # type: ignore[index]


async def test_enable_refuses_unconfigured_clusters(clusters: Clusters) -> None:
    sim = clusters.sim("cluster3")
    config = clusters.obj("cluster3", "ConfigMap", "cilium-config") or {}
    config["data"]["cluster-id"] = "0"
    sim.apply(config)
    result = await clusters.enable("cluster3")
    assert result.code == 1
    assert result.err.splitlines() == [
        "Error: Unable to enable ClusterMesh: Cluster not configured for clustermesh, use '--set cluster.id' and "
        "'--set cluster.name' with 'cilium install'.",
        "💡 set cluster-name and cluster-id (1..255) in ConfigMap cilium-config"]
    sim.delete("v1", "ConfigMap", "cilium-config", NS)
    result = await clusters.enable("cluster3")
    assert result.code == 1 and 'unable to retrieve ConfigMap "cilium-config"' in result.err.splitlines()[0]
    result = await clusters.run("enable", "--context", "cluster1")
    assert "cannot auto-detect service type, please specify using '--service-type' option" in result.err
    result = await clusters.run("enable", "--context", "cluster1", "--service-type", "ClusterIP")
    assert 'service type "ClusterIP" is not valid' in result.err
    result = await clusters.run("enable", "--context", "nope", "--service-type", "LoadBalancer")
    assert result.code == 1 and "nope" in result.err


async def test_disable_removes_exactly_what_enable_created(clusters: Clusters) -> None:
    sim = clusters.sim("cluster1")
    sim.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unrelated", "namespace": NS}})
    before = {(o["kind"], o["metadata"]["name"]) for t in (("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Service"))
              for o in sim.list(*t, namespace=NS)}
    assert (await clusters.enable("cluster1")).code == 0
    result = await clusters.run("disable", "--context", "cluster1", "--manifests", str(MANIFESTS))
    assert result.code == 0, result.err
    after = {(o["kind"], o["metadata"]["name"]) for t in (("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Service"))
             for o in sim.list(*t, namespace=NS)}
    assert after == before
    assert sim.get("apps/v1", "Deployment", "clustermesh-apiserver", NS) is None
    assert sim.get("rbac.authorization.k8s.io/v1", "ClusterRole", "clustermesh-apiserver") is None


async def test_disable_keeps_a_ca_it_did_not_create(clusters: Clusters) -> None:
    assert (await clusters.enable("cluster1")).code == 0
    ca = clusters.obj("cluster1", "Secret", "cilium-ca")
    assert ca is not None
    del ca["metadata"]["labels"]
    for key in ("resourceVersion", "uid", "creationTimestamp"):
        ca["metadata"].pop(key, None)
    clusters.sim("cluster2").apply({**ca, "metadata": {**ca["metadata"], "namespace": NS}})
    assert (await clusters.enable("cluster2")).code == 0
    assert (await clusters.run("disable", "--context", "cluster2", "--manifests", str(MANIFESTS))).code == 0
    assert clusters.obj("cluster2", "Secret", "cilium-ca") is not None
