"""What ``kubectl get`` shows for the workload kinds: kube-apiserver's columns, from server-side tables."""

from __future__ import annotations

import json

import aiohttp

from localmesh.kubesim import KubeSim
from localmesh.kubesim.controllers import ControllerManager
from tests.localmesh.controllers.conftest import Kubectl, eventually
from tests.localmesh.controllers.test_deployments import deployment, make_all_ready, pods, status


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


async def test_get_pods_deployments_services(kubesim: KubeSim, manager: ControllerManager,
                                             kubectl: Kubectl) -> None:
    kubesim.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                   "status": {"conditions": [{"type": "Ready", "status": "True"}],
                              "nodeInfo": {"kubeletVersion": "v1.33.0"}}})
    assert (await kubectl("apply", "-f", "-", stdin=deployment(replicas=2).encode())).code == 0
    await eventually(lambda: len(pods(kubesim)) == 2 and all(p["spec"].get("nodeName") for p in pods(kubesim)))
    pending = _rows((await kubectl("get", "pods")).out)
    assert pending[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [row[1:4] for row in pending[1:]] == [["0/1", "Pending", "0"]] * 2
    ready = await make_all_ready(kubesim, kubectl, 2)
    for pod in ready:  # what a kubelet reports per container
        patch = {"status": {"containerStatuses": [{"name": "main", "ready": True, "restartCount": 1,
                                                   "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                                                   "lastState": {"terminated": {
                                                       "exitCode": 1, "finishedAt": "2026-01-01T00:00:00Z"}}}]}}
        result = await kubectl("patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
                               "-p", json.dumps(patch))
        assert result.code == 0, result.err
    await eventually(lambda: status(kubesim).get("availableReplicas") == 2)
    wide = _rows((await kubectl("get", "pods", "-o", "wide")).out)
    assert wide[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                       "READINESS", "GATES"]
    for row in wide[1:]:
        # RESTARTS reads "1 (336d ago)": the restart count and when the last instance ended.
        assert row[1:3] == ["1/1", "Running"] and row[3] == "1" and row[4].startswith("(") and row[5] == "ago)"
        assert row[-4].startswith("10.244.0.") and row[-3] == "n1"
    deployments = _rows((await kubectl("get", "deployments")).out)
    assert deployments[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert deployments[1][:4] == ["web", "2/2", "2", "2"]
    kubesim.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mesh", "namespace": "default"},
                   "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                            "ports": [{"port": 2379, "nodePort": 32379}]}})
    await eventually(lambda: (kubesim.get("v1", "Service", "mesh", "default") or {}).get("status"))
    services = _rows((await kubectl("get", "service", "mesh")).out)
    assert services[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert services[1][1] == "LoadBalancer" and services[1][3] == "172.19.255.1"
    assert services[1][4] == "2379:32379/TCP"
    await eventually(lambda: len(((kubesim.get("v1", "Endpoints", "mesh", "default") or {}).get("subsets") or
                                  [{}])[0].get("addresses", [])) == 2)
    endpoints = _rows((await kubectl("get", "endpoints", "mesh")).out)
    assert endpoints[1][1].count(":2379") == 2
    nodes = _rows((await kubectl("get", "nodes")).out)
    assert nodes[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and nodes[1][:3] == ["n1", "Ready", "<none>"]


async def test_describe_shows_events_and_field_selectors(kubesim: KubeSim, manager: ControllerManager,
                                                         kubectl: Kubectl) -> None:
    kubesim.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    kubesim.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}})
    assert (await kubectl("apply", "-f", "-", stdin=deployment(replicas=2).encode())).code == 0
    await eventually(lambda: len(pods(kubesim)) == 2 and all(p["spec"].get("nodeName") for p in pods(kubesim)))
    described = await kubectl("describe", "deployment", "web")
    assert described.code == 0
    events = described.out.split("Events:", 1)[1]
    assert "SuccessfulCreate" in events and "deployment-controller" in events
    on_n2 = await kubectl("get", "pods", "--field-selector", "spec.nodeName=n2", "-o", "name")
    assert on_n2.out.strip() == "pod/" + next(p["metadata"]["name"] for p in pods(kubesim)
                                              if p["spec"]["nodeName"] == "n2")
    listed = _rows((await kubectl("get", "events")).out)
    assert listed[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any(row[2:5] == ["SuccessfulCreate", "deployment/web", "Created"] for row in listed[1:])
    wrong = await kubectl("get", "pods", "--field-selector", "involvedObject.name=x")
    assert wrong.code == 1 and "field label not supported: involvedObject.name" in wrong.err


async def test_watch_with_a_node_field_selector(kubesim: KubeSim) -> None:
    """How a kubelet watches its pods: only those bound to its node, ADDED once bound."""
    url = f"{kubesim.url}/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dn1&timeoutSeconds=2"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "x:1"}]}}
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        await kubesim.wait_for_watch("v1", "Pod")
        kubesim.apply(pod)
        kubesim.apply({**pod, "spec": {**pod["spec"], "nodeName": "n1"}})
        kubesim.delete("v1", "Pod", "p", "default")
        lines = [json.loads(line) async for line in response.content if line.strip()]
    assert [(e["type"], e["object"]["spec"].get("nodeName")) for e in lines] == [("ADDED", "n1"), ("DELETED", "n1")]
