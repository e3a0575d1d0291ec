"""A Cilium agent's view of the mesh, for the local runtime: what one node's agent reads and accepts.

``Agent`` runs the product's remote-cluster machinery (``apiserver.kvstoremesh``) against the agents'
config directory into memory caches, validates entries as agents do (``_validate``) and serves the
ClusterMesh status and the merged global services (``_daemon``), read by ``agent-dbg`` in the pod.
"""

from localmesh.agent._daemon import CLUSTER_MESH_PATH, SERVICES_PATH, Agent, AgentSettings
from localmesh.agent._view import Caches, GlobalService, MeshView, build_view

__all__ = ["CLUSTER_MESH_PATH", "SERVICES_PATH", "Agent", "AgentSettings", "Caches", "GlobalService", "MeshView",
           "build_view"]
