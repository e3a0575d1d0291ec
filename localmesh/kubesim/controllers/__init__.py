"""Controllers that make the emulator a small cluster: Deployment (without ReplicaSets), DaemonSet, a
scheduler, Endpoints and EndpointSlices, a garbage collector, and a LoadBalancer address controller.

They run in the emulator's process, on its event loop, through the same API semantics HTTP clients get;
what runs the Pods (a kubelet) is not here.
"""

from localmesh.kubesim.controllers._base import Cluster, Controller
from localmesh.kubesim.controllers._loadbalancer import AddressPool, LoadBalancerController
from localmesh.kubesim.controllers._manager import DEFAULT_LB_POOL, ControllerManager
from localmesh.kubesim.controllers._pods import template_hash

__all__ = [
    "DEFAULT_LB_POOL",
    "AddressPool",
    "Cluster",
    "Controller",
    "ControllerManager",
    "LoadBalancerController",
    "template_hash",
]
