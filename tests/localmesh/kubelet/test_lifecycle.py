"""Restarts, back-off, emptyDir lifetime, graceful deletion, foreign images, logs and exec."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from localmesh.kubelet import BackoffPolicy, CrashBackoff
from localmesh.kubesim._node import ContainerNotFoundError
from tests.localmesh.kubelet.conftest import Cluster, eventually, exists, pod_manifest, read_text, run_in, shell


def _docs(*objs: dict) -> str:  # type: ignore[type-arg]
    return "---\n".join(yaml.safe_dump(o) for o in objs)


def _status(cluster: Cluster, name: str) -> dict:  # type: ignore[type-arg]
    statuses = ((cluster.pod(name) or {}).get("status") or {}).get("containerStatuses") or [{}]
    return statuses[0]  # type: ignore[no-any-return]


def test_crash_backoff_doubles_to_the_maximum_and_resets_after_a_long_run() -> None:
    backoff = CrashBackoff(BackoffPolicy(initial=10.0, maximum=300.0, reset_after=600.0))
    delays = [backoff.delay(started_at=t, finished_at=t + 1) for t in range(0, 80, 10)]
    assert delays == [0, 10, 20, 40, 80, 160, 300, 300]
    assert backoff.delay(started_at=1000, finished_at=1600) == 0  # ran 10 min: back to the start
    assert backoff.delay(started_at=1600, finished_at=1601) == 10


async def test_liveness_failure_restarts_with_back_off_and_keeps_the_empty_dir(cluster: Cluster) -> None:
    container = shell("main", "echo started >> /data/starts; echo run $(cat /data/starts | wc -l); exec sleep 3600",
                      livenessProbe={"exec": {"command": ["/bin/sh", "-c", "test -e /tmp/never"]},
                                     "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 1},
                      volumeMounts=[{"name": "data", "mountPath": "/data"}])
    manifest = pod_manifest("live", [container], volumes=[{"name": "data", "emptyDir": {}}],
                            terminationGracePeriodSeconds=1)
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    seen_backoff = False

    def restarted_twice() -> bool:
        nonlocal seen_backoff
        status = _status(cluster, "live")
        seen_backoff |= status.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff"
        return int(status.get("restartCount", 0)) >= 2 and "running" in status.get("state", {})

    await eventually(restarted_twice)
    status = _status(cluster, "live")
    terminated = status["lastState"]["terminated"]
    assert terminated["exitCode"] == 128 + 15 and terminated["reason"] == "Error"
    assert seen_backoff  # the second restart waited in CrashLoopBackOff (the first is immediate)
    # the emptyDir outlived the container instances: one line per start
    pod = next(p for p in cluster.kubelet.pods.values() if p.name == "live")
    data_dir = pod.dir / "volumes" / "data"
    starts = (data_dir / "starts").read_text().count("started")
    assert starts >= status["restartCount"] + 1
    # logs: each instance its own file, --previous the one before the current
    container = pod.containers[0]
    restarts = container.restart_count
    assert cluster.kubelet.log_file("default", "live", "main") == container.log_path(restarts)
    assert cluster.kubelet.log_file("default", "live", "main", previous=True) == container.log_path(restarts - 1)
    assert read_text(container.log_path(restarts - 1)) == f"run {restarts}\n"
    events = {e["reason"] for e in cluster.sim.list("v1", "Event", "default")
              if e["involvedObject"]["name"] == "live"}
    assert {"Pulled", "Created", "Started", "Unhealthy", "Killing", "BackOff"} <= events
    started = [e for e in cluster.sim.list("v1", "Event", "default")
               if e["involvedObject"]["name"] == "live" and e["reason"] == "Started"]
    assert len(started) == 1 and started[0]["count"] >= 3  # one Event, counted, per repeated message
    # the emptyDir goes with the pod
    await cluster.kubectl("delete", "pod", "live", "--wait=false")
    await eventually(lambda: cluster.pod("live") is None)
    await eventually(lambda: not data_dir.exists())


async def test_restart_policy_never_and_on_failure(cluster: Cluster) -> None:
    never = pod_manifest("never", [shell("main", "exit 3")], restartPolicy="Never")
    on_failure = pod_manifest("onfail", [shell("main", "test -e /data/once && exit 0; touch /data/once; exit 1",
                                               volumeMounts=[{"name": "d", "mountPath": "/data"}])],
                              restartPolicy="OnFailure", volumes=[{"name": "d", "emptyDir": {}}])
    await cluster.kubectl("apply", "-f", "-", input=_docs(never, on_failure))
    await eventually(lambda: ((cluster.pod("never") or {}).get("status") or {}).get("phase") == "Failed")
    status = _status(cluster, "never")
    assert status["state"]["terminated"]["exitCode"] == 3 and status["restartCount"] == 0
    await eventually(lambda: ((cluster.pod("onfail") or {}).get("status") or {}).get("phase") == "Succeeded")
    status = _status(cluster, "onfail")
    assert status["restartCount"] == 1 and status["state"]["terminated"]["reason"] == "Completed"


async def test_init_containers_run_in_order_before_the_containers(cluster: Cluster) -> None:
    mounts = [{"name": "d", "mountPath": "/data"}]
    manifest = pod_manifest("init", [shell("main", "cat /data/order; exec sleep 3600", volumeMounts=mounts)],
                            initContainers=[shell("first", "echo first >> /data/order", volumeMounts=mounts),
                                            shell("second", "echo second >> /data/order", volumeMounts=mounts)],
                            volumes=[{"name": "d", "emptyDir": {}}])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await eventually(lambda: cluster.condition("init", "Ready") == "True")
    assert cluster.condition("init", "Initialized") == "True"
    inits = (cluster.pod("init") or {})["status"]["initContainerStatuses"]
    assert [(s["name"], s["state"]["terminated"]["reason"]) for s in inits] == [("first", "Completed"),
                                                                                 ("second", "Completed")]
    log = cluster.kubelet.log_file("default", "init", "main")
    await eventually(lambda: log.read_text() == "first\nsecond\n")


async def test_delete_sends_sigterm_then_sigkill_after_the_grace_period(cluster: Cluster, tmp_path: Path) -> None:
    # what the containers print on SIGTERM goes to a hostPath volume: the pods' logs go with the pods
    host = [{"name": "host", "mountPath": "/host"}]
    stubborn = shell("main", "trap 'echo got TERM > /host/stubborn' TERM; while true; do sleep 0.1; done",
                     volumeMounts=host)
    polite = shell("main", "trap 'echo bye > /host/polite; exit 0' TERM; while true; do sleep 0.1; done",
                   volumeMounts=host)
    volumes = [{"name": "host", "hostPath": {"path": str(tmp_path)}}]
    await cluster.kubectl("apply", "-f", "-", input=_docs(
        pod_manifest("stubborn", [stubborn], terminationGracePeriodSeconds=2, volumes=volumes),
        pod_manifest("polite", [polite], terminationGracePeriodSeconds=60, volumes=volumes)))
    await eventually(lambda: cluster.condition("stubborn", "Ready") == "True"
                     and cluster.condition("polite", "Ready") == "True")
    pods = {p.name: p for p in cluster.kubelet.pods.values()}
    pids = {name: p.containers[0].proc.pid for name, p in pods.items()}  # type: ignore[union-attr]
    veths = {name: p.sandbox.veth for name, p in pods.items()}
    started = time.monotonic()
    await cluster.kubectl("delete", "pod", "stubborn", "polite", "--wait=false")
    # graceful: the objects stay, marked, until the kubelet stopped the pods
    marked = cluster.pod("stubborn")
    assert marked is not None and marked["metadata"]["deletionGracePeriodSeconds"] == 2
    await eventually(lambda: cluster.pod("polite") is None)
    assert (tmp_path / "polite").read_text() == "bye\n"
    await eventually(lambda: cluster.pod("stubborn") is None)
    assert time.monotonic() - started >= 2  # SIGKILL only after the grace period
    assert (tmp_path / "stubborn").read_text() == "got TERM\n"
    for name, pid in pids.items():
        assert not exists(f"/proc/{pid}"), name
        assert not exists(f"/sys/class/net/{veths[name]}"), name


async def test_pod_of_another_image_stays_pending_with_an_event(cluster: Cluster) -> None:
    manifest = pod_manifest("nginx", [{"name": "web", "image": "docker.io/library/nginx:1.27"}])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def event() -> dict | None:  # type: ignore[type-arg]
        return next((e for e in cluster.sim.list("v1", "Event", "default")
                     if e["involvedObject"]["name"] == "nginx" and e["reason"] == "ErrImageNeverPull"), None)

    ev = await eventually(event)
    assert ev["type"] == "Warning" and '"docker.io/library/nginx:1.27"' in ev["message"]
    await eventually(lambda: _status(cluster, "nginx").get("state", {}).get("waiting", {}).get("reason")
                     == "ErrImageNeverPull")
    assert (cluster.pod("nginx") or {})["status"]["phase"] == "Pending"
    assert not any(p.name == "nginx" for p in cluster.kubelet.pods.values())
    _, out, _ = await cluster.kubectl("get", "events", "-o", "json")
    assert "ErrImageNeverPull" in out
    # deleting it needs no processes stopped
    await cluster.kubectl("delete", "pod", "nginx", "--wait=false")
    await eventually(lambda: cluster.pod("nginx") is None)


async def test_exec_and_logs_through_the_node_runtime(cluster: Cluster) -> None:
    container = shell("main", "echo out; echo err >&2; exec sleep 3600", env=[{"name": "GREETING", "value": "hi"}])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest("ex", [container])))
    await eventually(lambda: cluster.condition("ex", "Ready") == "True")
    log = cluster.kubelet.log_file("default", "ex", "main")
    await eventually(lambda: log.read_text() == "out\nerr\n")
    assert cluster.kubelet.is_running("default", "ex", "main")
    code, out, _ = await run_in(cluster, "ex", "main", "/bin/sh", "-c", "echo $GREETING $(hostname); exit 7")
    assert (code, out) == (7, "hi ex\n")
    proc = await cluster.kubelet.exec("default", "ex", "main", ["/bin/cat"], stdin=True, tty=False)
    out_b, _ = await proc.communicate(b"piped")
    assert out_b == b"piped"
    with pytest.raises(FileNotFoundError):
        await cluster.kubelet.exec("default", "ex", "main", ["/no/such/binary"], stdin=False, tty=False)
    with pytest.raises(ContainerNotFoundError):
        cluster.kubelet.log_file("default", "ex", "main", previous=True)
    with pytest.raises(ContainerNotFoundError):
        cluster.kubelet.log_file("default", "ex", "nope")
    with pytest.raises(ContainerNotFoundError):
        await cluster.kubelet.exec("default", "nope", "main", ["true"], stdin=False, tty=False)


async def test_kubectl_logs_and_exec_reach_the_pod(cluster: Cluster) -> None:
    container = shell("main", "echo hello from $(POD); exec sleep 3600",
                      env=[{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest("kc", [container])))
    await eventually(lambda: cluster.condition("kc", "Ready") == "True")

    async def logs() -> bool:
        _, out, _ = await cluster.kubectl("logs", "kc", "-c", "main", check=False)
        return out == "hello from kc\n"

    await eventually(logs)
    code, out, err = await cluster.kubectl("exec", "kc", "-c", "main", "--", "/bin/sh", "-c",
                                           "hostname; echo oops >&2; exit 3", check=False)
    assert (code, out) == (3, "kc\n") and "oops" in err
    code, out, _ = await cluster.kubectl("exec", "-i", "kc", "--", "/bin/cat", input="from stdin")
    assert (code, out) == (0, "from stdin")
    once = pod_manifest("once", [shell("main", "echo one; sleep 1; echo two")], restartPolicy="Never")
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(once))
    await eventually(lambda: cluster.kubelet.is_running("default", "once", "main"))
    _, out, _ = await cluster.kubectl("logs", "-f", "once")  # follows until the container ends
    assert out == "one\ntwo\n"
    code, _, err = await cluster.kubectl("logs", "kc", "--previous", check=False)
    assert code != 0 and 'previous terminated container "main" in pod "kc" not found' in err


async def test_a_new_pod_of_the_same_name_is_not_reported_on_by_the_old_one(cluster: Cluster) -> None:
    manifest = pod_manifest("same", [shell("main", "exec sleep 3600")], terminationGracePeriodSeconds=1)
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await eventually(lambda: cluster.condition("same", "Ready") == "True")
    first_uid = (cluster.pod("same") or {})["metadata"]["uid"]
    await cluster.kubectl("delete", "pod", "same", "--wait=false")
    await eventually(lambda: cluster.pod("same") is None)
    manifest["spec"]["containers"][0]["image"] = "docker.io/library/busybox:1"
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    await eventually(lambda: _status(cluster, "same").get("state", {}).get("waiting", {}).get("reason")
                     == "ErrImageNeverPull")
    second = cluster.pod("same") or {}
    assert second["metadata"]["uid"] != first_uid and second["status"]["phase"] == "Pending"
    assert not any(p.name == "same" for p in cluster.kubelet.pods.values())


async def test_startup_probe_gates_started_and_readiness(cluster: Cluster) -> None:
    container = shell("main", "sleep 3; touch /tmp/up; exec sleep 3600",
                      startupProbe={"exec": {"command": ["/bin/sh", "-c", "test -e /tmp/up"]},
                                    "periodSeconds": 1, "failureThreshold": 30},
                      readinessProbe={"tcpSocket": {"port": 1}, "periodSeconds": 1})  # nothing listens: never ready
    await cluster.kubectl("apply", "-f", "-", input=json.dumps(pod_manifest("slow", [container])))
    await eventually(lambda: "running" in _status(cluster, "slow").get("state", {}))
    first = _status(cluster, "slow")
    assert first["started"] is False and first["ready"] is False
    await eventually(lambda: _status(cluster, "slow").get("started") is True)
    assert _status(cluster, "slow")["ready"] is False and cluster.condition("slow", "Ready") == "False"
    assert _status(cluster, "slow")["restartCount"] == 0
