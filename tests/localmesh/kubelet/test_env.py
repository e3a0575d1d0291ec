"""Container env as kubelet builds it: value, valueFrom (fieldRef, configMapKeyRef, secretKeyRef, optional),
envFrom, and $(VAR) expansion of env, command and args, the command line otherwise unchanged."""

from __future__ import annotations

import base64
import json

from tests.localmesh.kubelet.conftest import NODE, Cluster, eventually, pod_manifest, read_text, shell


async def test_env_value_from_and_expansion(cluster: Cluster) -> None:
    cluster.sim.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "default"},
                       "data": {"cluster-name": "c1", "extra": "e"}})
    cluster.sim.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec", "namespace": "default"},
                       "data": {"password": base64.b64encode(b"s3cret").decode()}})
    env = [
        {"name": "A", "value": "alpha"},
        {"name": "B", "value": "$(A)-beta"},
        {"name": "ESCAPED", "value": "$$(A)"},
        {"name": "UNKNOWN", "value": "$(NOPE)x"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "CLUSTER", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "cluster-name"}}},
        {"name": "MISSING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": True}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
    ]
    container = shell("main", 'echo "args: $0 $1"; env; sleep 3600', env=env,
                      envFrom=[{"prefix": "CM_", "configMapRef": {"name": "cfg"}}])
    container["command"] = ["/bin/sh", "-c", 'echo "cmd $(A)"; env; sleep 3600', "$(B)"]
    container["args"] = ["$(NOPE)", "$$(A)", "$(POD)"]
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest("envpod", [container])))
    await eventually(lambda: cluster.condition("envpod", "Ready") == "True")
    pod = cluster.pod("envpod")
    assert pod is not None
    log = cluster.kubelet.log_file("default", "envpod", "main")
    text = await eventually(lambda: log.read_text() if "PASSWORD=" in log.read_text() else "")
    lines = text.splitlines()
    assert lines[0] == "cmd alpha"
    got = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert got["A"] == "alpha"
    assert got["B"] == "alpha-beta"
    assert got["ESCAPED"] == "$(A)"
    assert got["UNKNOWN"] == "$(NOPE)x"
    assert got["POD"] == "envpod" and got["NS"] == "default" and got["UID"] == pod["metadata"]["uid"]
    assert got["IP"] == pod["status"]["podIP"]
    assert got["NODE"] == NODE and got["APP"] == "envpod"
    assert got["CLUSTER"] == "c1" and got["PASSWORD"] == "s3cret"
    assert "MISSING" not in got
    assert got["CM_extra"] == "e"  # (dash drops "CM_cluster-name" from its environment)
    assert got["KUBERNETES_SERVICE_HOST"] == "127.0.0.1"
    assert got["KUBERNETES_SERVICE_PORT"] == str(cluster.sim.port)
    # The process's argv is the expanded command line, nothing added or wrapped.
    (runner,) = next(p for p in cluster.kubelet.pods.values() if p.name == "envpod").containers
    assert runner.proc is not None
    argv = read_text(f"/proc/{runner.proc.pid}/cmdline").encode().split(b"\0")[:-1]
    assert argv == [b"/bin/sh", b"-c", b'echo "cmd alpha"; env; sleep 3600', b"alpha-beta", b"$(NOPE)", b"$(A)",
                    b"envpod"]


async def test_missing_config_map_waits_with_create_container_config_error(cluster: Cluster) -> None:
    env = [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "k"}}}]
    manifest = pod_manifest("waits", [shell("main", "echo X=$X; exec sleep 3600", env=env)])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def waiting_reason() -> str:
        statuses = ((cluster.pod("waits") or {}).get("status") or {}).get("containerStatuses") or [{}]
        return str((statuses[0].get("state") or {}).get("waiting", {}).get("reason", ""))

    await eventually(lambda: waiting_reason() == "CreateContainerConfigError")
    statuses = (cluster.pod("waits") or {})["status"]["containerStatuses"]
    assert statuses[0]["state"]["waiting"]["message"] == 'configmap "later" not found'
    cluster.sim.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later", "namespace": "default"},
                       "data": {"k": "now"}})
    await eventually(lambda: cluster.condition("waits", "Ready") == "True")
    log = cluster.kubelet.log_file("default", "waits", "main")
    await eventually(lambda: "X=now" in log.read_text())
