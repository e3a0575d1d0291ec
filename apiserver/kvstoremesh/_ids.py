"""Cluster ID uniqueness across the mesh: every remote must advertise its own ID. Pure."""

from __future__ import annotations


class ClusterIDConflictError(ValueError):
    """The remote advertises the local cluster's ID, or one already held by another remote."""


class ClusterIDs:
    """Reservations ``cluster name -> cluster ID``; the local cluster's ID is never available.

    A remote keeps its reservation across reconnections, so a peer that starts advertising the
    same ID while the first one is briefly unreachable is the one refused.
    """

    def __init__(self, local_name: str, local_id: int) -> None:
        self._local_name = local_name
        self._local_id = local_id
        self._by_cluster: dict[str, int] = {}

    def reserve(self, cluster: str, cluster_id: int) -> None:
        if cluster_id == self._local_id:
            raise ClusterIDConflictError(
                f"remote cluster {cluster!r} advertises cluster ID {cluster_id}, which is the ID of the "
                f"local cluster {self._local_name!r}")
        for other, other_id in self._by_cluster.items():
            if other != cluster and other_id == cluster_id:
                raise ClusterIDConflictError(
                    f"remote cluster {cluster!r} advertises cluster ID {cluster_id}, which is already used "
                    f"by remote cluster {other!r}")
        self._by_cluster[cluster] = cluster_id

    def release(self, cluster: str) -> None:
        self._by_cluster.pop(cluster, None)

    def get(self, cluster: str) -> int | None:
        return self._by_cluster.get(cluster)
