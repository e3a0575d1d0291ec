"""Endpoints and EndpointSlices of Services with a selector, from the Pods' IPs and Ready conditions."""

from __future__ import annotations

from typing import Any

from localmesh.kubesim import KubeSim
from localmesh.kubesim.controllers import ControllerManager
from tests.localmesh.controllers.conftest import Kubectl, eventually

Obj = dict[str, Any]


def pod(name: str, ip: str | None, ready: bool, app: str = "db", **meta: Any) -> Obj:
    status: Obj = {"phase": "Running" if ip else "Pending",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default",
                                                            "labels": {"app": app}, **meta},
            "spec": {"nodeName": "n1", "containers": [{"name": "etcd", "image": "x:1",
                                                       "ports": [{"name": "client", "containerPort": 2379}]}]},
            "status": status}


SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default",
                                                               "labels": {"tier": "data"}},
           "spec": {"selector": {"app": "db"},
                    "ports": [{"name": "etcd", "port": 2379, "targetPort": "client"},
                              {"name": "metrics", "port": 9962, "targetPort": 9962}]}}


def endpoints(sim: KubeSim) -> Obj | None:
    return sim.get("v1", "Endpoints", "db", "default")


def slices(sim: KubeSim) -> list[Obj]:
    return sim.list("discovery.k8s.io/v1", "EndpointSlice", "default", label_selector="kubernetes.io/service-name=db")


async def test_endpoints_and_slices_follow_pods(kubesim: KubeSim, manager: ControllerManager,
                                                kubectl: Kubectl) -> None:
    kubesim.apply(SERVICE)
    # No pods: an Endpoints without subsets and one empty slice.
    await eventually(lambda: endpoints(kubesim) is not None and len(slices(kubesim)) == 1)
    assert "subsets" not in (endpoints(kubesim) or {})
    assert slices(kubesim)[0]["endpoints"] == []
    kubesim.apply(pod("db-0", "10.244.0.10", ready=True))
    kubesim.apply(pod("db-1", "10.244.0.11", ready=False))
    kubesim.apply(pod("db-2", None, ready=False))  # no IP yet: not an endpoint
    kubesim.apply(pod("other", "10.244.0.99", ready=True, app="web"))
    await eventually(lambda: (endpoints(kubesim) or {}).get("subsets"))
    ep = endpoints(kubesim)
    assert ep is not None
    uid = {p["metadata"]["name"]: p["metadata"]["uid"] for p in kubesim.list("v1", "Pod", "default")}
    assert ep["metadata"]["labels"] == {"tier": "data"}
    assert ep["subsets"] == [{
        "addresses": [{"ip": "10.244.0.10", "nodeName": "n1", "targetRef": {
            "kind": "Pod", "namespace": "default", "name": "db-0", "uid": uid["db-0"]}}],
        "notReadyAddresses": [{"ip": "10.244.0.11", "nodeName": "n1", "targetRef": {
            "kind": "Pod", "namespace": "default", "name": "db-1", "uid": uid["db-1"]}}],
        "ports": [{"name": "etcd", "port": 2379, "protocol": "TCP"},
                  {"name": "metrics", "port": 9962, "protocol": "TCP"}]}]
    [s] = await eventually(lambda: len(slices(kubesim)) == 1 and len(slices(kubesim)[0]["endpoints"]) == 2
                           and slices(kubesim))
    assert s["addressType"] == "IPv4"
    assert s["metadata"]["name"].startswith("db-")
    assert s["metadata"]["labels"] == {"tier": "data", "kubernetes.io/service-name": "db",
                                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    svc = kubesim.get("v1", "Service", "db", "default")
    assert svc is not None and s["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]
    assert s["ports"] == [{"name": "etcd", "port": 2379, "protocol": "TCP"},
                          {"name": "metrics", "port": 9962, "protocol": "TCP"}]
    conditions = {e["targetRef"]["name"]: (e["addresses"], e["conditions"]) for e in s["endpoints"]}
    assert conditions == {
        "db-0": (["10.244.0.10"], {"ready": True, "serving": True, "terminating": False}),
        "db-1": (["10.244.0.11"], {"ready": False, "serving": False, "terminating": False})}
    # A terminating pod: out of Endpoints, in the slice as terminating.
    kubesim.apply(pod("db-0", "10.244.0.10", ready=True, finalizers=["example.com/hold"]))
    kubesim.delete("v1", "Pod", "db-0", "default")
    await eventually(lambda: "addresses" not in ((endpoints(kubesim) or {}).get("subsets") or [{}])[0])
    await eventually(lambda: any(e["conditions"] == {"ready": False, "serving": True, "terminating": True}
                                 for e in slices(kubesim)[0]["endpoints"]))
    shown = await kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=db")
    assert shown.code == 0 and "IPv4" in shown.out
    # The Service goes: its Endpoints and slices go too.
    assert (await kubectl("delete", "service", "db")).code == 0
    await eventually(lambda: endpoints(kubesim) is None and not slices(kubesim))


async def test_services_without_selector_are_left_alone(kubesim: KubeSim, manager: ControllerManager) -> None:
    manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext", "namespace": "default"},
              "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 443}]}]}
    kubesim.apply(manual)
    kubesim.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext", "namespace": "default"},
                   "spec": {"ports": [{"port": 443}]}})
    kubesim.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
                   "spec": {"selector": {"app": "db"}, "ports": [{"port": 1}]}})
    await eventually(lambda: endpoints(kubesim) is not None)  # the controller has run past ext
    ext = kubesim.get("v1", "Endpoints", "ext", "default")
    assert ext is not None and ext["subsets"][0]["addresses"] == [{"ip": "192.0.2.1"}]
    assert not kubesim.list("discovery.k8s.io/v1", "EndpointSlice", "default",
                            label_selector="kubernetes.io/service-name=ext")
