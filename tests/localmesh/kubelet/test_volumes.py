"""Volumes: Secret, ConfigMap, projected (secret, configMap, serviceAccountToken, downwardAPI) and emptyDir
materialised at their mountPaths with kubelet's ..data layout and modes, following their objects; the
service account volume and in-cluster API access; nothing created on the host's file system."""

from __future__ import annotations

import base64
import json
import sys

from tests.localmesh.kubelet.conftest import Cluster, eventually, exists, pod_manifest, run_in, shell


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


VOLUMES = [
    {"name": "sec", "secret": {"secretName": "certs", "defaultMode": 0o400}},
    {"name": "cfg", "configMap": {"name": "conf", "items": [{"key": "users.yaml", "path": "users.yaml"}]}},
    {"name": "proj", "projected": {"defaultMode": 0o440, "sources": [
        {"secret": {"name": "certs", "items": [{"key": "tls.crt", "path": "tls.crt"},
                                               {"key": "tls.key", "path": "tls.key", "mode": 0o400}]}},
        {"secret": {"name": "absent", "optional": True}},
        {"configMap": {"name": "conf", "items": [{"key": "users.yaml", "path": "nested/users.yaml"}]}},
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
        {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                   {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
    {"name": "scratch", "emptyDir": {}},
]
MOUNTS = [
    {"name": "sec", "mountPath": "/var/lib/localmesh-test/secrets", "readOnly": True},
    {"name": "cfg", "mountPath": "/var/lib/localmesh-test/config"},
    {"name": "proj", "mountPath": "/etc/localmesh-test/projected", "readOnly": True},
    {"name": "scratch", "mountPath": "/var/run/localmesh-test-scratch"},
    {"name": "cfg", "mountPath": "/etc/localmesh-test-users.yaml", "subPath": "users.yaml"},
]


async def test_volumes_at_mount_paths_follow_their_objects(cluster: Cluster) -> None:
    cluster.sim.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "certs", "namespace": "default"},
                       "data": {"tls.crt": _b64("CERT1"), "tls.key": _b64("KEY1")}})
    cluster.sim.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": "default"},
                       "data": {"users.yaml": "users: [a]\n", "other": "x"}})
    manifest = pod_manifest("vols", [shell("main", "exec sleep 3600", volumeMounts=MOUNTS)], volumes=VOLUMES,
                            hostAliases=[{"ip": "10.9.8.7", "hostnames": ["mesh.example", "other.example"]}])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await eventually(lambda: cluster.condition("vols", "Ready") == "True")

    async def sh(script: str) -> str:
        code, out, err = await run_in(cluster, "vols", "main", "/bin/sh", "-c", script)
        assert code == 0, err
        return out

    assert await sh("cat /var/lib/localmesh-test/secrets/tls.crt") == "CERT1"
    assert await sh("stat -L -c %a /var/lib/localmesh-test/secrets/tls.key") == "400\n"
    assert await sh("ls /var/lib/localmesh-test/config") == "users.yaml\n"
    assert await sh("cat /etc/localmesh-test-users.yaml") == "users: [a]\n"  # subPath: one file
    assert await sh("stat -L -c %a /var/lib/localmesh-test/config/users.yaml") == "644\n"
    assert (await sh("readlink /var/lib/localmesh-test/config/users.yaml")) == "..data/users.yaml\n"
    assert (await sh("readlink /var/lib/localmesh-test/config/..data")).startswith("..20")
    proj = "/etc/localmesh-test/projected"
    assert await sh(f"cat {proj}/tls.key {proj}/nested/users.yaml {proj}/name") == "KEY1users: [a]\nvols"
    assert await sh(f"stat -L -c %a {proj}/tls.crt {proj}/tls.key") == "440\n400\n"
    assert await sh(f"cat {proj}/labels") == 'app="vols"\n'
    assert (await sh(f"cat {proj}/token")).startswith("localmesh-token:")
    # read-only mounts refuse writes; emptyDir is writable
    code, _, _ = await run_in(cluster, "vols", "main", "/bin/sh", "-c", f"echo x > {proj}/new")
    assert code != 0
    scratch = "/var/run/localmesh-test-scratch/f"
    assert await sh(f"echo kept > {scratch} && cat {scratch}") == "kept\n"
    # the service account volume, /etc/hosts with hostAliases, the pod's hostname
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert await sh(f"cat {sa}/namespace") == "default"
    assert "BEGIN CERTIFICATE" in await sh(f"cat {sa}/ca.crt")
    hosts = await sh("cat /etc/hosts")
    pod_ip = (cluster.pod("vols") or {})["status"]["podIP"]
    assert f"{pod_ip}\tvols\n" in hosts and "10.9.8.7\tmesh.example\tother.example\n" in hosts
    assert await sh("hostname") == "vols\n"
    # none of those paths exists on the host
    for path in ("/var/lib/localmesh-test", "/etc/localmesh-test", "/var/run/localmesh-test-scratch",
                 "/etc/localmesh-test-users.yaml",
                 "/var/run/secrets/kubernetes.io"):
        assert not exists(path), path

    # an update swaps ..data atomically; removed keys disappear
    before = await sh("readlink /var/lib/localmesh-test/config/..data")
    cluster.sim.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "conf", "namespace": "default"},
                       "data": {"users.yaml": "users: [a, b]\n"}})
    cluster.sim.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "certs", "namespace": "default"},
                       "data": {"tls.crt": _b64("CERT2"), "tls.key": _b64("KEY2")}})
    await eventually(lambda: _reads(cluster, "/var/lib/localmesh-test/config/users.yaml", "users: [a, b]\n"))
    await eventually(lambda: _reads(cluster, f"{proj}/tls.crt", "CERT2"))
    after = await sh("readlink /var/lib/localmesh-test/config/..data")
    assert after != before
    assert await sh("ls -a /var/lib/localmesh-test/config | grep '^\\.\\.2' | wc -l") == "1\n"


async def _reads(cluster: Cluster, path: str, expected: str) -> bool:
    _, out, _ = await run_in(cluster, "vols", "main", "/bin/cat", path)
    return out == expected


async def test_pod_reaches_the_api_server_with_the_in_cluster_configuration(cluster: Cluster) -> None:
    # The product's own in-cluster configuration (apiserver/kube/config.py) from inside the pod.
    script = ("import asyncio, os\n"
              "from apiserver.kube import KubeOptions, build_client\n"
              "from apiserver.kube._http import KubeHTTP\n"
              "async def main():\n"
              "    client = await build_client(KubeOptions())\n"
              "    doc = await KubeHTTP(client.api_client).get_json('/api/v1/namespaces/default/pods')\n"
              "    print('pods', sorted(p['metadata']['name'] for p in doc['items']))\n"
              "    await client.close()\n"
              "asyncio.run(main())\n")
    container = {"name": "main", "command": [sys.executable, "-c", script]}
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest("incluster", [container],
                                                                            restartPolicy="Never")))
    await eventually(lambda: ((cluster.pod("incluster") or {}).get("status") or {}).get("phase") == "Succeeded")
    log = cluster.kubelet.log_file("default", "incluster", "main")
    assert "pods ['incluster']" in log.read_text()
