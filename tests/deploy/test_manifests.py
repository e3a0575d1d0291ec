"""deploy/ rendered with the real kubectl kustomize: upstream's pod, our additions, every overlay."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from deploy_render import DEPLOY, IMAGE, KUBECTL, TARGETS, Obj, containers, deploy_tree, find, render, upstream

from apiserver.kube.resources import ALL_RESOURCES, SERVICE_EXPORTS

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")

# What the pod spec must carry exactly as upstream renders it, per container.
UPSTREAM_CONTAINER_FIELDS = ("command", "args", "env", "ports", "volumeMounts", "terminationMessagePolicy",
                             "imagePullPolicy", "readinessProbe")
UPSTREAM_POD_FIELDS = ("volumes", "restartPolicy", "priorityClassName", "serviceAccountName",
                       "terminationGracePeriodSeconds", "automountServiceAccountToken", "affinity",
                       "nodeSelector")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Obj]]:
    tree = deploy_tree(tmp_path_factory.mktemp("render"))
    return {target: render(tree, target) for target in TARGETS}


def deployment(objs: list[Obj]) -> Obj:
    return find(objs, "Deployment", "clustermesh-apiserver")


def by_name(items: list[Obj]) -> dict[str, Obj]:
    return {item["name"]: item for item in items}


def assert_is_upstream_pod(ours: Obj, theirs: Obj) -> None:
    assert ours["metadata"]["labels"] == theirs["metadata"]["labels"]
    for field in ("replicas", "selector", "strategy"):
        assert ours["spec"][field] == theirs["spec"][field], field
    ours_t, theirs_t = ours["spec"]["template"], theirs["spec"]["template"]
    assert ours_t["metadata"] == theirs_t["metadata"]
    ours_pod, theirs_pod = ours_t["spec"], theirs_t["spec"]
    for field in UPSTREAM_POD_FIELDS:
        assert ours_pod.get(field) == theirs_pod.get(field), field
    # Ours may only add to upstream's security settings, never loosen one.
    assert ours_pod["securityContext"] | theirs_pod["securityContext"] == ours_pod["securityContext"]
    assert [c["name"] for c in ours_pod["initContainers"]] == [c["name"] for c in theirs_pod["initContainers"]]
    assert [c["name"] for c in ours_pod["containers"]] == [c["name"] for c in theirs_pod["containers"]]
    mine = {c["name"]: c for c in containers(ours)}
    for container in containers(theirs):
        name = container["name"]
        for field in UPSTREAM_CONTAINER_FIELDS:
            if field in container:
                assert mine[name][field] == container[field], f"{name}.{field}"
        assert mine[name]["securityContext"] | container["securityContext"] == mine[name]["securityContext"]
        assert mine[name]["image"] == IMAGE


@pytest.mark.parametrize(("target", "reference"), [
    pytest.param("base", "clustermesh-with-kvstoremesh.yaml", id="base"),
    pytest.param("overlays/no-kvstoremesh", "clustermesh-without-kvstoremesh.yaml", id="no-kvstoremesh"),
])
def test_pod_and_services_are_upstreams(rendered: dict[str, list[Obj]], target: str, reference: str) -> None:
    ours, theirs = rendered[target], upstream(reference)
    assert_is_upstream_pod(deployment(ours), deployment(theirs))
    for name in ("clustermesh-apiserver", "clustermesh-apiserver-metrics"):
        mine, chart = find(ours, "Service", name), find(theirs, "Service", name)
        assert mine["spec"] == chart["spec"], name
        assert mine["metadata"]["labels"] == chart["metadata"]["labels"], name
    assert find(ours, "ServiceAccount", "clustermesh-apiserver")["metadata"]["namespace"] == "kube-system"
    binding = find(ours, "ClusterRoleBinding", "clustermesh-apiserver")
    chart_binding = find(theirs, "ClusterRoleBinding", "clustermesh-apiserver")
    assert (binding["roleRef"], binding["subjects"]) == (chart_binding["roleRef"], chart_binding["subjects"])


def test_every_object_is_in_kube_system(rendered: dict[str, list[Obj]]) -> None:
    cluster_scoped = {"ClusterRole", "ClusterRoleBinding"}
    for target, objs in rendered.items():
        for obj in objs:
            expected = None if obj["kind"] in cluster_scoped else "kube-system"
            assert obj["metadata"].get("namespace") == expected, f"{target}: {obj['kind']}/{obj['metadata']['name']}"


def test_cluster_role_grants_exactly_what_the_exporter_reads(rendered: dict[str, list[Obj]]) -> None:
    role = find(rendered["base"], "ClusterRole", "clustermesh-apiserver")
    granted = {(group, resource) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"]}
    read = {(r.group, r.plural) for r in ALL_RESOURCES if r is not SERVICE_EXPORTS}
    assert granted == read
    assert all(rule["verbs"] == ["get", "list", "watch"] and "resourceNames" not in rule for rule in role["rules"])
    chart = find(upstream("clustermesh-with-kvstoremesh.yaml"), "ClusterRole", "clustermesh-apiserver")
    upstream_granted = {(g, r) for rule in chart["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted < upstream_granted  # never more than upstream


def test_hardening_probes_and_resources(rendered: dict[str, list[Obj]]) -> None:
    pod = deployment(rendered["base"])["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"fsGroup": 65532, "runAsGroup": 65532, "runAsNonRoot": True,
                                      "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}}
    for c in containers(deployment(rendered["base"])):
        assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                        "readOnlyRootFilesystem": True}, c["name"]
        requests, limits = c["resources"]["requests"], c["resources"]["limits"]
        assert set(requests) == set(limits) == {"cpu", "memory"}, c["name"]
    main = by_name(pod["containers"])
    for name, port in (("apiserver", "apiserv-health"), ("kvstoremesh", "kvmesh-health")):
        assert main[name]["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        for probe in ("livenessProbe", "startupProbe"):
            assert main[name][probe]["httpGet"] == {"path": "/healthz", "port": port}
        # A long initial sync never meets the liveness probe: the start-up probe allows minutes.
        startup = main[name]["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert main["etcd"][probe]["httpGet"] == {"path": "/health", "port": "etcd-metrics"}
    # Sized from the benchmarks: the exporter's RSS peak (244 MB) and KVStoreMesh's (192 MB) fit.
    mib = {"Mi": 1, "Gi": 1024}
    def memory(c: Obj, kind: str) -> int:
        text = c["resources"][kind]["memory"]
        return int(text[:-2]) * mib[text[-2:]]
    assert memory(main["apiserver"], "requests") >= 244 and memory(main["kvstoremesh"], "requests") >= 192
    etcd_data = by_name(pod["volumes"])["etcd-data-dir"]
    assert etcd_data == {"name": "etcd-data-dir", "emptyDir": {"medium": ""}}


def test_overlays(rendered: dict[str, list[Obj]]) -> None:
    nodeport = find(rendered["overlays/nodeport"], "Service", "clustermesh-apiserver")["spec"]
    assert nodeport["type"] == "NodePort" and nodeport["ports"] == [{"port": 2379, "nodePort": 32379}]
    assert find(rendered["base"], "Service", "clustermesh-apiserver")["spec"]["type"] == "LoadBalancer"
    monitor = find(rendered["overlays/monitoring"], "ServiceMonitor", "clustermesh-apiserver")
    metrics = find(rendered["base"], "Service", "clustermesh-apiserver-metrics")
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in metrics["spec"]["ports"]]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= metrics["metadata"]["labels"].items()
    dashboard = find(rendered["overlays/monitoring"], "ConfigMap", "clustermesh-apiserver-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    no_kvmesh = find(rendered["overlays/no-kvstoremesh"], "NetworkPolicy", "clustermesh-apiserver")
    assert "kvmesh-metrics" not in str(no_kvmesh)


def test_tls_secrets_have_upstreams_names_and_keys(rendered: dict[str, list[Obj]]) -> None:
    chart = upstream("clustermesh-with-kvstoremesh.yaml")
    objs = rendered["overlays/tls"]
    secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}
    chart_secrets = {o["metadata"]["name"]: o for o in chart if o["kind"] == "Secret"}
    assert set(secrets) == set(chart_secrets) | {"cilium-ca"}
    for name, chart_secret in chart_secrets.items():
        assert secrets[name]["type"] == chart_secret["type"] == "kubernetes.io/tls"
        assert set(secrets[name]["data"]) == set(chart_secret["data"])
    assert set(secrets["cilium-ca"]["data"]) == {"ca.crt", "ca.key"}

    def leaf(name: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(base64.b64decode(secrets[name]["data"]["tls.crt"]))

    ca = x509.load_pem_x509_certificate(base64.b64decode(secrets["cilium-ca"]["data"]["ca.crt"]))
    identities = {"server": "clustermesh-apiserver.cilium.io", "admin": "admin-c1", "local": "local-c1",
                  "remote": "remote"}
    for suffix, common_name in identities.items():
        cert = leaf(f"clustermesh-apiserver-{suffix}-cert")
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name
    users = yaml.safe_load(find(objs, "ConfigMap", "clustermesh-remote-users")["data"]["users.yaml"])
    assert users == {"users": [{"name": "remote-c2", "role": "remote"}]}


def test_tls_component_without_issued_files_names_them(tmp_path: Path) -> None:
    """Rendering the tls overlay before generate.sh ran fails, naming the missing directory."""
    shutil.copytree(DEPLOY, tmp_path / "deploy", ignore=shutil.ignore_patterns("pki"))
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(tmp_path / "deploy" / "overlays" / "tls")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "components/tls/pki" in done.stderr


def test_the_image_is_overridable_with_kustomize_images(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(DEPLOY, tree / "deploy", ignore=shutil.ignore_patterns("pki"))
    mine = tree / "mine"
    mine.mkdir()
    digest = "sha256:" + "ab" * 32
    (mine / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../deploy/base"],
        "images": [{"name": "ghcr.io/clustermesh-python/clustermesh-apiserver",
                    "newName": "registry.example/mesh/apiserver", "digest": digest}]}))
    images = {c["image"] for c in containers(deployment(render(tree, "mine")))}
    assert images == {f"registry.example/mesh/apiserver@{digest}"}
