"""Deployments without ReplicaSets, driven by the real kubectl (apply, get, scale, set image, rollout
status, wait). The test plays the kubelet: it writes each Pod's Ready status through the API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from localmesh.kubesim import KubeSim
from localmesh.kubesim.controllers import ControllerManager, template_hash
from tests.localmesh.controllers.conftest import Kubectl, eventually

Obj = dict[str, Any]


def deployment(name: str = "web", replicas: int = 2, image: str = "example/web:1", **spec: Any) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": image}]}}, **spec}})


def pods(sim: KubeSim, app: str = "web", active: bool = True) -> list[Obj]:
    return [p for p in sim.list("v1", "Pod", "default", label_selector=f"app={app}")
            if not (active and p["metadata"].get("deletionTimestamp"))]


def ready_pods(current: list[Obj]) -> list[Obj]:
    return [p for p in current if any(c["type"] == "Ready" and c["status"] == "True"
                                      for c in p.get("status", {}).get("conditions", []))]


async def make_ready(kubectl: Kubectl, current: list[Obj], ready: list[Obj]) -> None:
    """Mark ready those of ``current`` not in ``ready``."""
    for pod in current:
        if pod not in ready:
            await mark_ready(kubectl, pod)


async def mark_ready(kubectl: Kubectl, pod: Obj, ready: bool = True) -> None:
    """What a kubelet writes once the containers run and pass their readiness probe."""
    name = pod["metadata"]["name"]
    status = {"phase": "Running", "podIP": f"10.244.0.{abs(hash(name)) % 250 + 2}",
              "conditions": [{"type": t, "status": "True" if ready else "False"}
                             for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")]}
    result = await kubectl("patch", "pod", name, "--subresource=status", "--type=merge",
                           "-p", json.dumps({"status": status}))
    assert result.code == 0, result.err


async def make_all_ready(sim: KubeSim, kubectl: Kubectl, count: int, app: str = "web") -> list[Obj]:
    current = await eventually(lambda: len(pods(sim, app)) == count and pods(sim, app))
    for pod in current:
        await mark_ready(kubectl, pod)
    return list(current)


def status(sim: KubeSim, name: str = "web") -> Obj:
    d = sim.get("apps/v1", "Deployment", name, "default")
    assert d is not None
    result: Obj = d.get("status") or {}
    return result


def conditions(sim: KubeSim, name: str = "web") -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status(sim, name).get("conditions", [])}


async def test_pods_are_owned_named_and_labelled(kubesim: KubeSim, manager: ControllerManager,
                                                 kubectl: Kubectl) -> None:
    assert (await kubectl("apply", "-f", "-", stdin=deployment().encode())).code == 0
    created = await eventually(lambda: len(pods(kubesim)) == 2 and pods(kubesim))
    d = kubesim.get("apps/v1", "Deployment", "web", "default")
    assert d is not None
    expected_hash = template_hash(d["spec"]["template"])
    for pod in created:
        meta = pod["metadata"]
        assert meta["labels"] == {"app": "web", "pod-template-hash": expected_hash}
        prefix = f"web-{expected_hash}-"
        assert meta["name"].startswith(prefix) and len(meta["name"]) == len(prefix) + 5
        assert meta["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                            "uid": d["metadata"]["uid"], "controller": True,
                                            "blockOwnerDeletion": True}]
        assert meta["uid"] and pod["spec"]["containers"][0]["image"] == "example/web:1"
        assert pod["status"]["phase"] == "Pending"
    listed = await kubectl("get", "pods", "-l", "app=web", "--no-headers")
    assert sorted(line.split()[0] for line in listed.out.splitlines()) == sorted(
        p["metadata"]["name"] for p in created)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert status(kubesim) == {
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "unavailableReplicas": 2,
        "conditions": status(kubesim)["conditions"]}
    assert conditions(kubesim) == {"Available": ("False", "MinimumReplicasUnavailable"),
                                   "Progressing": ("True", "NewReplicaSetCreated")}


async def test_rollout_status_and_wait_available(kubesim: KubeSim, manager: ControllerManager,
                                                 kubectl: Kubectl) -> None:
    assert (await kubectl("apply", "-f", "-", stdin=deployment().encode())).code == 0
    rollout = asyncio.create_task(kubectl("rollout", "status", "deployment/web", "--timeout=30s"))
    waiting = asyncio.create_task(kubectl("wait", "--for=condition=Available", "deployment/web", "--timeout=30s"))
    await make_all_ready(kubesim, kubectl, 2)
    done = await rollout
    assert done.code == 0, done.err
    assert 'deployment "web" successfully rolled out' in done.out
    assert "Waiting for deployment \"web\" rollout to finish" in done.out
    waited = await waiting
    assert waited.code == 0 and "deployment.apps/web condition met" in waited.out
    final = status(kubesim)
    assert {k: v for k, v in final.items() if k != "conditions"} == {
        "observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}
    assert conditions(kubesim) == {"Available": ("True", "MinimumReplicasAvailable"),
                                   "Progressing": ("True", "NewReplicaSetAvailable")}
    progressing = next(c for c in final["conditions"] if c["type"] == "Progressing")
    assert progressing["message"].startswith('ReplicaSet "web-') and progressing["message"].endswith(
        '" has successfully progressed.')
    table = await kubectl("get", "deployment", "web")
    assert table.code == 0 and table.out.split("\n")[1].startswith("web ")


async def test_deleted_pod_is_replaced_and_scaling(kubesim: KubeSim, manager: ControllerManager,
                                                   kubectl: Kubectl) -> None:
    assert (await kubectl("apply", "-f", "-", stdin=deployment().encode())).code == 0
    first = await make_all_ready(kubesim, kubectl, 2)
    victim = first[0]["metadata"]["name"]
    assert (await kubectl("delete", "pod", victim)).code == 0
    replaced = await eventually(lambda: len(pods(kubesim)) == 2 and victim not in
                                [p["metadata"]["name"] for p in pods(kubesim)] and pods(kubesim))
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in replaced} == {
        first[0]["metadata"]["labels"]["pod-template-hash"]}
    await eventually(lambda: status(kubesim).get("availableReplicas") == 1
                     and status(kubesim).get("unavailableReplicas") == 1)
    assert (await kubectl("scale", "deployment", "web", "--replicas=4")).code == 0
    await make_all_ready(kubesim, kubectl, 4)
    await eventually(lambda: status(kubesim).get("availableReplicas") == 4)
    # Scaling down deletes the least valuable pods first: not ready before ready.
    await mark_ready(kubectl, pods(kubesim)[0], ready=False)
    unready = pods(kubesim)[0]["metadata"]["name"]
    assert (await kubectl("scale", "deployment", "web", "--replicas=3")).code == 0
    left = await eventually(lambda: len(pods(kubesim)) == 3 and pods(kubesim))
    assert unready not in [p["metadata"]["name"] for p in left]
    assert (await kubectl("scale", "deployment", "web", "--replicas=0")).code == 0
    await eventually(lambda: not pods(kubesim, active=False))
    await eventually(lambda: status(kubesim).get("observedGeneration") == 4 and "replicas" not in status(kubesim))
    assert conditions(kubesim)["Available"] == ("True", "MinimumReplicasAvailable")


async def test_rolling_update_keeps_availability(kubesim: KubeSim, manager: ControllerManager,
                                                 kubectl: Kubectl) -> None:
    assert (await kubectl("apply", "-f", "-", stdin=deployment(replicas=4).encode())).code == 0
    old = await make_all_ready(kubesim, kubectl, 4)
    old_hash = old[0]["metadata"]["labels"]["pod-template-hash"]
    await eventually(lambda: status(kubesim).get("availableReplicas") == 4)
    rollout = asyncio.create_task(kubectl("rollout", "status", "deployment/web", "--timeout=30s"))
    assert (await kubectl("set", "image", "deployment/web", "main=example/web:2")).code == 0
    # maxSurge 25% of 4 = 1, maxUnavailable 25% of 4 = 1: at most 5 pods, at least 3 available.
    seen_max = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        current = pods(kubesim)
        seen_max = max(seen_max, len(current))
        ready = ready_pods(current)
        assert len(ready) >= 3
        fresh = [p for p in current if p["metadata"]["labels"]["pod-template-hash"] != old_hash]
        if len(fresh) == 4 and len(current) == 4 and len(ready) == 4:
            break
        await make_ready(kubectl, fresh, ready)
        assert loop.time() < deadline, current
        await asyncio.sleep(0.05)
    assert seen_max <= 5
    done = await rollout
    assert done.code == 0 and 'deployment "web" successfully rolled out' in done.out, done.out + done.err
    d = kubesim.get("apps/v1", "Deployment", "web", "default")
    assert d is not None and d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert status(kubesim)["observedGeneration"] == 2


async def test_recreate_deletes_old_pods_first(kubesim: KubeSim, manager: ControllerManager,
                                               kubectl: Kubectl) -> None:
    doc = deployment(replicas=2, strategy={"type": "Recreate"})
    assert (await kubectl("apply", "-f", "-", stdin=doc.encode())).code == 0
    old = await make_all_ready(kubesim, kubectl, 2)
    assert (await kubectl("set", "image", "deployment/web", "main=example/web:2")).code == 0
    new = await eventually(lambda: len(pods(kubesim)) == 2 and all(
        p["metadata"]["labels"]["pod-template-hash"] != old[0]["metadata"]["labels"]["pod-template-hash"]
        for p in pods(kubesim)) and pods(kubesim))
    assert not {p["metadata"]["name"] for p in new} & {p["metadata"]["name"] for p in old}


async def test_progress_deadline_exceeded(kubesim: KubeSim, kubectl: Kubectl) -> None:
    now = [1_800_000_000.0]
    manager = ControllerManager(kubesim, clock=lambda: now[0])
    await manager.start()
    try:
        doc = deployment(replicas=1, progressDeadlineSeconds=30)
        assert (await kubectl("apply", "-f", "-", stdin=doc.encode())).code == 0
        await eventually(lambda: conditions(kubesim).get("Progressing") == ("True", "NewReplicaSetCreated"))
        now[0] += 31
        # Any change makes the controller look again (a timer would, after the deadline).
        assert (await kubectl("annotate", "deployment", "web", "touched=yes")).code == 0
        await eventually(lambda: conditions(kubesim).get("Progressing") == ("False", "ProgressDeadlineExceeded"))
        result = await kubectl("rollout", "status", "deployment/web", "--timeout=10s")
        assert result.code == 1 and 'deployment "web" exceeded its progress deadline' in result.err
    finally:
        await manager.stop()


async def test_deleting_the_deployment_deletes_its_pods(kubesim: KubeSim, manager: ControllerManager,
                                                        kubectl: Kubectl) -> None:
    assert (await kubectl("apply", "-f", "-", stdin=deployment().encode())).code == 0
    await eventually(lambda: len(pods(kubesim)) == 2)
    assert (await kubectl("delete", "deployment", "web")).code == 0
    await eventually(lambda: not pods(kubesim, active=False))


async def test_selector_must_match_template(kubesim: KubeSim, kubectl: Kubectl) -> None:
    doc = json.loads(deployment())
    doc["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    result = await kubectl("apply", "-f", "-", stdin=json.dumps(doc).encode())
    assert result.code == 1
    assert ('The Deployment "web" is invalid: spec.template.metadata.labels: Invalid value: '
            'map[string]string{"app":"other"}: `selector` does not match template `labels`') in result.err


async def test_min_ready_seconds_delays_availability(kubesim: KubeSim, kubectl: Kubectl) -> None:
    now = [1_800_000_000.0]
    manager = ControllerManager(kubesim, clock=lambda: now[0])
    await manager.start()
    try:
        assert (await kubectl("apply", "-f", "-", stdin=deployment(replicas=1, minReadySeconds=30).encode())).code == 0
        [pod] = await eventually(lambda: len(pods(kubesim)) == 1 and pods(kubesim))
        ready_at = "2027-01-15T08:00:00Z"  # 1_800_000_000 is 2027-01-15T08:00:00Z
        patch = {"status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": ready_at}]}}
        assert (await kubectl("patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
                              "-p", json.dumps(patch))).code == 0
        await eventually(lambda: status(kubesim).get("readyReplicas") == 1)
        assert "availableReplicas" not in status(kubesim)
        assert conditions(kubesim)["Available"] == ("False", "MinimumReplicasUnavailable")
        now[0] += 31
        assert (await kubectl("annotate", "deployment", "web", "touched=yes")).code == 0
        await eventually(lambda: status(kubesim).get("availableReplicas") == 1)
        assert conditions(kubesim)["Available"] == ("True", "MinimumReplicasAvailable")
    finally:
        await manager.stop()


async def test_rollout_restart_replaces_every_pod(kubesim: KubeSim, manager: ControllerManager,
                                                  kubectl: Kubectl) -> None:
    assert (await kubectl("apply", "-f", "-", stdin=deployment(replicas=2).encode())).code == 0
    before = {p["metadata"]["name"] for p in await make_all_ready(kubesim, kubectl, 2)}
    assert (await kubectl("rollout", "restart", "deployment/web")).code == 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while {p["metadata"]["name"] for p in pods(kubesim)} & before or len(pods(kubesim)) != 2:
        for pod in pods(kubesim):
            if pod["metadata"]["name"] not in before and pod["status"].get("phase") != "Running":
                await mark_ready(kubectl, pod)
        assert loop.time() < deadline, pods(kubesim)
        await asyncio.sleep(0.05)
    done = await kubectl("rollout", "status", "deployment/web", "--timeout=20s")
    assert done.code == 0 and "successfully rolled out" in done.out, done.out + done.err
