"""NodePort and cluster IP allocation (API server side) and LoadBalancer addresses (controller side),
driven by the real kubectl."""

from __future__ import annotations

import json

import aiohttp

from localmesh.kubesim import KubeSim
from localmesh.kubesim.controllers import ControllerManager
from tests.localmesh.controllers.conftest import Kubectl, eventually


def _service(name: str, kind: str = "NodePort", node_port: int | None = None, **spec: object) -> str:
    port: dict[str, object] = {"name": "etcd", "port": 2379, "targetPort": 2379}
    if node_port is not None:
        port["nodePort"] = node_port
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
                       "spec": {"type": kind, "selector": {"app": name}, "ports": [port], **spec}})


async def _apply(kubectl: Kubectl, doc: str) -> tuple[int, str]:
    result = await kubectl("apply", "-f", "-", stdin=doc.encode())
    return result.code, result.out + result.err


async def _get(kubectl: Kubectl, name: str) -> dict[str, object]:
    result = await kubectl("get", "service", name, "-o", "json")
    assert result.code == 0, result.err
    doc: dict[str, object] = json.loads(result.out)
    return doc


def _node_ports(svc: dict[str, object]) -> list[int]:
    spec = svc["spec"]
    assert isinstance(spec, dict)
    return [int(p["nodePort"]) for p in spec["ports"] if "nodePort" in p]


async def test_node_port_given_free_and_clash(kubesim: KubeSim, kubectl: Kubectl) -> None:
    assert (await _apply(kubectl, _service("a", node_port=32379)))[0] == 0
    assert _node_ports(await _get(kubectl, "a")) == [32379]
    code, text = await _apply(kubectl, _service("b", node_port=32379))
    assert code == 1
    assert ('The Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 32379: provided port is already '
            'allocated') in text
    code, text = await _apply(kubectl, _service("c", node_port=80))
    assert code == 1
    assert ("spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of "
            "valid ports is 30000-32767") in text
    # No nodePort given: a free one from the range, not the taken one.
    assert (await _apply(kubectl, _service("d")))[0] == 0
    [picked] = _node_ports(await _get(kubectl, "d"))
    assert 30000 <= picked <= 32767 and picked != 32379
    # Applying the same manifest again keeps the allocated port (the update omits it).
    assert (await _apply(kubectl, _service("d")))[0] == 0
    assert _node_ports(await _get(kubectl, "d")) == [picked]
    # Deleting the owner frees the port at once.
    assert (await kubectl("delete", "service", "a")).code == 0
    assert (await _apply(kubectl, _service("b", node_port=32379)))[0] == 0


async def test_clash_is_422_with_field_cause(kubesim: KubeSim, kubectl: Kubectl) -> None:
    assert (await _apply(kubectl, _service("a", node_port=30100)))[0] == 0
    async with aiohttp.ClientSession() as http, http.post(
            f"{kubesim.url}/api/v1/namespaces/default/services", data=_service("b", node_port=30100),
            headers={"Content-Type": "application/json"}) as response:
        assert response.status == 422
        status = await response.json()
    assert status["reason"] == "Invalid" and status["code"] == 422
    assert status["details"] == {"name": "b", "kind": "Service", "causes": [
        {"reason": "FieldValueInvalid", "message": "Invalid value: 30100: provided port is already allocated",
         "field": "spec.ports[0].nodePort"}]}


async def test_type_change_drops_and_frees_node_ports(kubesim: KubeSim, kubectl: Kubectl) -> None:
    assert (await _apply(kubectl, _service("a", node_port=31000)))[0] == 0
    patched = await kubectl("patch", "service", "a", "--type=merge", "-p", '{"spec":{"type":"ClusterIP"}}')
    assert patched.code == 0, patched.err
    assert _node_ports(await _get(kubectl, "a")) == []
    assert (await _apply(kubectl, _service("b", node_port=31000)))[0] == 0
    code, text = await _apply(kubectl, _service("c", kind="ClusterIP", node_port=31001))
    assert code == 1 and "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'" in text


async def test_load_balancer_gets_node_ports_and_health_check_port(kubesim: KubeSim, kubectl: Kubectl) -> None:
    assert (await _apply(kubectl, _service("lb", kind="LoadBalancer", externalTrafficPolicy="Local")))[0] == 0
    svc = await _get(kubectl, "lb")
    assert len(_node_ports(svc)) == 1
    spec = svc["spec"]
    assert isinstance(spec, dict)
    assert spec["allocateLoadBalancerNodePorts"] is True
    assert 30000 <= spec["healthCheckNodePort"] <= 32767 and spec["healthCheckNodePort"] not in _node_ports(svc)
    assert (await _apply(kubectl, _service("lb2", kind="LoadBalancer", allocateLoadBalancerNodePorts=False)))[0] == 0
    assert _node_ports(await _get(kubectl, "lb2")) == []


async def test_cluster_ip_clash_refused_and_freed(kubesim: KubeSim, kubectl: Kubectl) -> None:
    assert (await _apply(kubectl, _service("a", kind="ClusterIP", clusterIP="10.96.7.7")))[0] == 0
    code, text = await _apply(kubectl, _service("b", kind="ClusterIP", clusterIP="10.96.7.7"))
    assert code == 1
    assert ('spec.clusterIPs: Invalid value: []string{"10.96.7.7"}: failed to allocate IP 10.96.7.7: provided IP '
            'is already allocated') in text
    assert (await kubectl("delete", "service", "a")).code == 0
    assert (await _apply(kubectl, _service("b", kind="ClusterIP", clusterIP="10.96.7.7")))[0] == 0


def _ingress(sim: KubeSim, name: str) -> str | None:
    svc = sim.get("v1", "Service", name, "default") or {}
    ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
    return str(ingress[0]["ip"]) if ingress else None


def _events(sim: KubeSim, name: str) -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in sim.list("v1", "Event", "default")
            if e["involvedObject"]["name"] == name]


async def test_load_balancer_address_pool(kubesim: KubeSim, manager: ControllerManager, kubectl: Kubectl) -> None:
    # The pool 172.19.255.0/29 has six usable addresses, .1 to .6.
    for i in range(6):
        assert (await _apply(kubectl, _service(f"lb{i}", kind="LoadBalancer")))[0] == 0
    addresses = [await eventually(lambda i=i: _ingress(kubesim, f"lb{i}")) for i in range(6)]
    assert sorted(addresses) == [f"172.19.255.{i}" for i in range(1, 7)]
    waited = await kubectl("wait", "--for=jsonpath={.status.loadBalancer.ingress[0].ip}=" + addresses[0],
                           "service/lb0", "--timeout=10s")
    assert waited.code == 0, waited.err
    assert ("Normal", "IPAllocated", f'Assigned IP ["{addresses[0]}"]') in _events(kubesim, "lb0")
    # Exhausted: an Event, no address.
    assert (await _apply(kubectl, _service("late", kind="LoadBalancer")))[0] == 0
    await eventually(lambda: _events(kubesim, "late"))
    assert _events(kubesim, "late") == [
        ("Warning", "AllocationFailed", 'Failed to allocate IP for "default/late": no available IPs')]
    assert _ingress(kubesim, "late") is None
    # Deleting one frees its address for the waiting one; a type change frees another.
    assert (await kubectl("delete", "service", "lb2")).code == 0
    assert await eventually(lambda: _ingress(kubesim, "late")) == addresses[2]
    assert (await kubectl("patch", "service", "lb3", "--type=merge", "-p", '{"spec":{"type":"ClusterIP"}}')).code == 0
    await eventually(lambda: _ingress(kubesim, "lb3") is None)
    assert manager.loadbalancer is not None
    assert addresses[3] not in manager.loadbalancer.assigned()
    # An address asked for by spec.loadBalancerIP, when free and in the pool.
    assert (await _apply(kubectl, _service("asked", kind="LoadBalancer", loadBalancerIP=addresses[3])))[0] == 0
    assert await eventually(lambda: _ingress(kubesim, "asked")) == addresses[3]
    assert (await _apply(kubectl, _service("outside", kind="LoadBalancer", loadBalancerIP="192.0.2.1")))[0] == 0
    await eventually(lambda: _events(kubesim, "outside"))
    assert _events(kubesim, "outside")[0][1] == "AllocationFailed"


async def test_load_balancer_class_of_another_controller_is_ignored(
        kubesim: KubeSim, manager: ControllerManager, kubectl: Kubectl) -> None:
    assert (await _apply(kubectl, _service("other", kind="LoadBalancer", loadBalancerClass="example.com/x")))[0] == 0
    assert (await _apply(kubectl, _service("ours", kind="LoadBalancer")))[0] == 0
    await eventually(lambda: _ingress(kubesim, "ours"))
    assert _ingress(kubesim, "other") is None
