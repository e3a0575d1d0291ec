"""Mesh-level checks: can these clusters be joined into one Cluster Mesh?"""

from apiserver.mesh.prerequisites import ClusterFacts, check_mesh

__all__ = ["ClusterFacts", "check_mesh"]
