"""The upstream chart's Deployment run against the image's install (the wheel in a fresh venv).

Every container command line, env and volume of the chart's Deployment (tests/deploy/upstream) is run
unchanged in a pod sandbox (deploy_pod): etcd-init completes, then etcd, apiserver and kvstoremesh
answer every probe of deploy/base, the exporter writes the emulated cluster into the mesh etcd, and
the metrics the Grafana dashboard uses are exported. The Kubernetes API is the emulator, inside the
pod's network namespace, reached through the in-cluster service account as in a real pod.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from deploy_image import ImageInstall
from deploy_pod import Container, Pod, http_get, poll, stop
from deploy_render import DEPLOY, KUBECTL, Obj, deploy_tree, find, python_env, readable_tmp, render, upstream
from prometheus_client.parser import text_string_to_metric_families

from localmesh.kubesim import ServerTLS

pytestmark = [
    pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed"),
    pytest.mark.skipif(shutil.which("etcd") is None or shutil.which("etcdctl") is None, reason="etcd not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="network and mount namespaces need root"),
    pytest.mark.slow,
]

DASHBOARD = DEPLOY / "components" / "monitoring" / "grafana-dashboard.json"
CILIUM_CONFIG = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "cilium-config", "namespace": "kube-system"},
                 "data": {"cluster-name": "c1", "cluster-id": "1"}}
SEED = [
    CILIUM_CONFIG,
    {"apiVersion": "cilium.io/v2", "kind": "CiliumNode", "metadata": {"name": "node-a"},
     "spec": {"addresses": [{"type": "InternalIP", "ip": "10.0.0.1"}]}},
    {"apiVersion": "cilium.io/v2", "kind": "CiliumIdentity", "metadata": {"name": "1234"},
     "security-labels": {"k8s:app": "web", "k8s:io.kubernetes.pod.namespace": "default"}},
]
START_TIMEOUT = 240.0  # a loaded 2-CPU machine: etcdinit runs a temporary etcd, then three processes start


@dataclass
class RunningPod:
    pod: Pod
    containers: dict[str, Container]
    probes: dict[str, Obj]  # deploy/base's containers, by name
    etcd_data: Path
    admin: Path
    remote: Path

    def dead(self) -> str | None:
        for c in self.containers.values():
            if c.proc is not None and c.proc.poll() is not None and c.name != "etcd-init":
                return f"{c.name} exited with {c.proc.returncode}:\n{c.output()[-3000:]}"
        return None

    def etcdctl(self, identity: Path, *args: str) -> tuple[int, str]:
        done = self.pod.in_netns(["etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={identity / 'ca.crt'}",
                                  f"--cert={identity / 'tls.crt'}", f"--key={identity / 'tls.key'}", *args])
        return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def running(image_install: ImageInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPod]:
    work = tmp_path_factory.mktemp("pod")
    tree = deploy_tree(work)
    tls_objects = render(tree, "overlays/tls")
    objects = {(o["kind"], o["metadata"]["name"]): o for o in [*tls_objects, CILIUM_CONFIG]}
    chart = find(upstream("clustermesh-with-kvstoremesh.yaml"), "Deployment", "clustermesh-apiserver")
    ours = find(render(tree, "base"), "Deployment", "clustermesh-apiserver")
    root = readable_tmp("cmdeploy-pod-")
    tls = ServerTLS.self_signed(root / "kubesim")
    seed = root / "seed.yaml"
    seed.write_text(yaml.safe_dump_all(SEED))
    pod = Pod(image_install, chart, objects, root / "pod",
              extra_env={"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "6443"})
    try:
        pod.start_sandbox({"token": b"pod-token", "ca.crt": tls.cert_file.read_bytes(), "namespace": b"kube-system"})
        kubesim_log = root / "kubesim.log"
        kubesim = pod.start_beside(
            [sys.executable, "-m", "apiserver", "kubesim", "--host=127.0.0.1", "--port=6443", f"--seed={seed}",
             f"--tls-cert={tls.cert_file}", f"--tls-key={tls.key_file}"], kubesim_log, python_env())
        poll(lambda: True if "emulator listening" in kubesim_log.read_text() else None, "kubesim", 60,
             lambda: None if kubesim.poll() is None else kubesim_log.read_text())
        spec = chart["spec"]["template"]["spec"]
        containers = {c["name"]: pod.container(c) for c in [*spec["initContainers"], *spec["containers"]]}
        init = pod.start(containers["etcd-init"])
        assert init.proc is not None
        init.proc.wait(START_TIMEOUT)
        assert init.proc.returncode == 0, init.output()
        for name in ("etcd", "apiserver", "kvstoremesh"):
            pod.start(containers[name])
        probes = {c["name"]: c for c in ours["spec"]["template"]["spec"]["containers"]}
        volumes = pod.root / "volumes"
        yield RunningPod(pod, containers, probes, volumes / "etcd-data-dir", volumes / "etcd-admin-client",
                         tree / "components" / "tls" / "pki" / "remote")
    finally:
        pod.close()
        shutil.rmtree(root, ignore_errors=True)


def probe_ok(running: RunningPod, container: str, probe: Obj) -> bool:
    get = probe["httpGet"]
    assert running.pod.netns is not None
    status, _ = http_get(running.pod.netns, running.containers[container].port(get["port"]), get["path"])
    return 200 <= status < 400


def wait_ready(running: RunningPod, container: str) -> None:
    probe = running.probes[container]["readinessProbe"]
    poll(lambda: True if probe_ok(running, container, probe) else None, f"{container} readiness", START_TIMEOUT,
         running.dead)


def test_command_lines_are_the_charts(running: RunningPod) -> None:
    """What runs is the chart's argv after kubelet's $(VAR) expansion, with the pod's UID as token."""
    argv = {name: c.argv for name, c in running.containers.items()}
    token = running.pod.uid
    assert argv["etcd-init"] == [
        "/usr/bin/clustermesh-apiserver", "etcdinit", "--etcd-cluster-name=clustermesh-apiserver",
        f"--etcd-initial-cluster-token={token}", "--etcd-data-dir=/var/run/etcd"]
    assert argv["etcd"][0] == "/usr/bin/etcd" and f"--initial-cluster-token={token}" in argv["etcd"]
    assert argv["apiserver"][:4] == ["/usr/bin/clustermesh-apiserver", "clustermesh", "--cluster-name=c1",
                                     "--cluster-id=1"]
    assert argv["kvstoremesh"][:4] == ["/usr/bin/clustermesh-apiserver", "kvstoremesh", "--cluster-name=c1",
                                       "--cluster-id=1"]
    assert not any("$(" in word for words in argv.values() for word in words)


def test_etcd_init_completed(running: RunningPod) -> None:
    init = running.containers["etcd-init"]
    assert init.proc is not None and init.proc.returncode == 0
    assert (running.etcd_data / "member").is_dir()


@pytest.mark.parametrize("container", ["etcd", "apiserver", "kvstoremesh"])
def test_every_probe_answers(running: RunningPod, container: str) -> None:
    wait_ready(running, container)
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe_ok(running, container, running.probes[container][kind]), f"{container} {kind}"


def test_the_exporter_wrote_the_cluster_to_the_mesh_etcd(running: RunningPod) -> None:
    wait_ready(running, "apiserver")
    code, out = running.etcdctl(running.admin, "get", "cilium/cluster-config/c1", "--print-value-only")
    assert code == 0, out
    assert json.loads(out)["id"] == 1
    code, out = running.etcdctl(running.admin, "get", "--prefix", "--keys-only", "cilium/state/")
    assert code == 0, out
    keys = set(out.split())
    assert {"cilium/state/nodes/v1/c1/node-a", "cilium/state/identities/v1/id/1234"} <= keys
    # The remote identity (what other clusters use on 2379) reads the state, and cannot write.
    code, out = running.etcdctl(running.remote, "get", "--keys-only", "cilium/state/nodes/v1/c1/node-a")
    assert code == 0 and "node-a" in out, out
    code, out = running.etcdctl(running.remote, "put", "cilium/state/nodes/v1/c1/x", "y")
    assert code != 0 and "permission denied" in out


def exported_names(text: str) -> set[str]:
    names: set[str] = set()
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    return names


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) > 15
    return {name for expr in exprs for name in re.findall(r"\b((?:cilium|etcd)_[a-z0-9_]+)\b", expr)}


def test_every_dashboard_metric_is_exported(running: RunningPod) -> None:
    for name in ("etcd", "apiserver", "kvstoremesh"):
        wait_ready(running, name)
    assert running.pod.netns is not None
    exported: set[str] = set()
    for container, port in (("apiserver", "apiserv-metrics"), ("kvstoremesh", "kvmesh-metrics"),
                            ("etcd", "etcd-metrics")):
        status, text = http_get(running.pod.netns, running.containers[container].port(port), "/metrics")
        assert status == 200, f"{container} /metrics: {status} {text[:200]}"
        exported |= exported_names(text)
    used = dashboard_metric_names()
    assert {n for n in used if n.startswith("cilium_kvstoremesh_")} and {n for n in used if n.startswith("etcd_")}
    assert sorted(used - exported) == []


def test_containers_stop_on_sigterm(running: RunningPod) -> None:
    """Kubelet's SIGTERM ends every container cleanly within the pod's grace period."""
    for name in ("etcd", "apiserver", "kvstoremesh"):
        wait_ready(running, name)
    grace = float(running.pod.spec["terminationGracePeriodSeconds"])
    # etcd ends itself with the signal it received (pkg/osutil), ours exit 0; none needs SIGKILL.
    for name, code in (("kvstoremesh", 0), ("apiserver", 0), ("etcd", -signal.SIGTERM)):
        proc = running.containers[name].proc
        assert proc is not None
        assert stop(proc, grace) == code, f"{name}: {running.containers[name].output()[-2000:]}"
