"""DaemonSets (one Pod per Node) and the scheduler (Pods without a node), with real kubectl."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from localmesh.kubesim import KubeSim
from localmesh.kubesim.controllers import ControllerManager
from tests.localmesh.controllers.conftest import Kubectl, eventually
from tests.localmesh.controllers.test_deployments import deployment, make_ready, mark_ready, pods, ready_pods

Obj = dict[str, Any]


def node(name: str, **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}}


def daemonset(name: str = "agent", **pod_spec: Any) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "main", "image": "example/agent:1"}], **pod_spec}}}})


def by_node(sim: KubeSim, app: str) -> dict[str, str]:
    return {p["spec"].get("nodeName", ""): p["metadata"]["name"] for p in pods(sim, app)}


def ds_status(sim: KubeSim) -> Obj:
    ds = sim.get("apps/v1", "DaemonSet", "agent", "default")
    assert ds is not None
    result: Obj = ds.get("status") or {}
    return result


async def test_daemonset_one_pod_per_node(kubesim: KubeSim, manager: ControllerManager, kubectl: Kubectl) -> None:
    kubesim.apply(node("n1"))
    kubesim.apply(node("n2"))
    assert (await kubectl("apply", "-f", "-", stdin=daemonset().encode())).code == 0
    placed = await eventually(lambda: len(pods(kubesim, "agent")) == 2 and by_node(kubesim, "agent"))
    assert set(placed) == {"n1", "n2"}
    pod = pods(kubesim, "agent")[0]
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
    assert {"controller-revision-hash", "pod-template-generation"} <= set(pod["metadata"]["labels"])
    assert any(t["key"] == "node.kubernetes.io/unschedulable" for t in pod["spec"]["tolerations"])
    rollout = asyncio.create_task(kubectl("rollout", "status", "daemonset/agent", "--timeout=30s"))
    for p in pods(kubesim, "agent"):
        await mark_ready(kubectl, p)
    done = await rollout
    assert done.code == 0 and 'daemon set "agent" successfully rolled out' in done.out, done.out + done.err
    assert ds_status(kubesim) == {"currentNumberScheduled": 2, "numberMisscheduled": 0, "desiredNumberScheduled": 2,
                                  "numberReady": 2, "observedGeneration": 1, "updatedNumberScheduled": 2,
                                  "numberAvailable": 2}
    # A new node gets a pod; a removed node's pod goes.
    kubesim.apply(node("n3"))
    await eventually(lambda: set(by_node(kubesim, "agent")) == {"n1", "n2", "n3"})
    assert (await kubectl("delete", "node", "n1")).code == 0
    await eventually(lambda: set(by_node(kubesim, "agent")) == {"n2", "n3"})
    # n3's pod has not been marked ready.
    await eventually(lambda: ds_status(kubesim).get("desiredNumberScheduled") == 2
                     and ds_status(kubesim).get("numberUnavailable") == 1)
    # A deleted pod is replaced on the same node.
    victim = by_node(kubesim, "agent")["n2"]
    assert (await kubectl("delete", "pod", victim)).code == 0
    await eventually(lambda: by_node(kubesim, "agent").get("n2") not in (None, victim))


async def test_daemonset_node_selector_and_rolling_update(kubesim: KubeSim, manager: ControllerManager,
                                                          kubectl: Kubectl) -> None:
    kubesim.apply(node("n1", role="edge"))
    kubesim.apply(node("n2", role="edge"))
    kubesim.apply(node("n3", role="core"))
    assert (await kubectl("apply", "-f", "-", stdin=daemonset(nodeSelector={"role": "edge"}).encode())).code == 0
    first = await eventually(lambda: len(pods(kubesim, "agent")) == 2 and by_node(kubesim, "agent"))
    assert set(first) == {"n1", "n2"}
    for p in pods(kubesim, "agent"):
        await mark_ready(kubectl, p)
    await eventually(lambda: ds_status(kubesim).get("numberAvailable") == 2)
    assert (await kubectl("set", "image", "daemonset/agent", "main=example/agent:2")).code == 0
    # maxUnavailable 1: one node at a time loses its (old) pod.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        current = pods(kubesim, "agent")
        images = {p["spec"]["nodeName"]: p["spec"]["containers"][0]["image"] for p in current}
        ready = ready_pods(current)
        assert len(ready) >= 1, current
        if images == {"n1": "example/agent:2", "n2": "example/agent:2"} and len(ready) == 2:
            break
        await make_ready(kubectl, current, ready)
        assert loop.time() < deadline, current
        await asyncio.sleep(0.05)
    await eventually(lambda: ds_status(kubesim).get("updatedNumberScheduled") == 2
                     and ds_status(kubesim).get("observedGeneration") == 2)


async def test_scheduler_spreads_pods_over_nodes(kubesim: KubeSim, manager: ControllerManager,
                                                 kubectl: Kubectl) -> None:
    assert (await kubectl("apply", "-f", "-", stdin=deployment(replicas=2).encode())).code == 0
    # No node yet: Pending, PodScheduled False, a FailedScheduling event.
    waiting = await eventually(lambda: [p for p in pods(kubesim) if any(
        c["type"] == "PodScheduled" and c["status"] == "False" for c in p["status"].get("conditions", []))])
    cond = next(c for c in waiting[0]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["reason"], cond["message"]) == ("Unschedulable", "no nodes available to schedule pods")
    assert any(e["reason"] == "FailedScheduling" for e in kubesim.list("v1", "Event", "default"))
    kubesim.apply(node("n1"))
    kubesim.apply({**node("n2"), "spec": {"unschedulable": True}})
    kubesim.apply(node("n3"))
    await eventually(lambda: sorted(p["spec"].get("nodeName", "") for p in pods(kubesim)) == ["n1", "n3"])
    scheduled = next(c for c in pods(kubesim)[0]["status"]["conditions"] if c["type"] == "PodScheduled")
    assert scheduled["status"] == "True"
    # A pod with a nodeSelector only goes where it matches.
    kubesim.apply(node("n4", disk="ssd"))
    kubesim.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "picky", "namespace": "default"},
                   "spec": {"nodeSelector": {"disk": "ssd"}, "containers": [{"name": "c", "image": "x:1"}]}})
    await eventually(lambda: (kubesim.get("v1", "Pod", "picky", "default") or {}).get("spec", {}).get("nodeName")
                     == "n4")
    listed = await kubectl("get", "pods", "-o", "wide")
    assert listed.code == 0 and "picky" in listed.out


async def test_scheduler_balances_many_pods(kubesim: KubeSim, manager: ControllerManager, kubectl: Kubectl) -> None:
    for i in range(5):
        kubesim.apply(node(f"n{i}"))
    assert (await kubectl("apply", "-f", "-", stdin=deployment(replicas=50).encode())).code == 0
    await eventually(lambda: len(pods(kubesim)) == 50 and all(p["spec"].get("nodeName") for p in pods(kubesim)))
    per_node = sorted(sum(1 for p in pods(kubesim) if p["spec"]["nodeName"] == f"n{i}") for i in range(5))
    assert per_node == [10] * 5
    # Pods leaving a node make it the least loaded: the replacements go there.
    for pod in [p for p in pods(kubesim) if p["spec"]["nodeName"] == "n3"][:4]:
        kubesim.delete("v1", "Pod", pod["metadata"]["name"], "default")
    await eventually(lambda: len(pods(kubesim)) == 50 and all(p["spec"].get("nodeName") for p in pods(kubesim)))
    assert sum(1 for p in pods(kubesim) if p["spec"]["nodeName"] == "n3") == 10
