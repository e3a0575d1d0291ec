"""A local simulated mesh: N clusters, each with its Kubernetes API emulator, etcd, exporter and
KVStoreMesh, fully meshed -- the README's main command."""

from localmesh.demo._mesh import DemoCluster, SimulatedMesh

__all__ = ["DemoCluster", "SimulatedMesh"]
