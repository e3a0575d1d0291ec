"""Cluster IDs must be unique across the mesh (local included)."""

from __future__ import annotations

import pytest

from apiserver.kvstoremesh import ClusterIDConflictError, ClusterIDs


def test_reservations() -> None:
    ids = ClusterIDs("local", 1)
    with pytest.raises(ClusterIDConflictError, match="ID of the local cluster 'local'"):
        ids.reserve("c2", 1)
    ids.reserve("c2", 2)
    ids.reserve("c2", 2)  # a reconnection keeps its own ID
    with pytest.raises(ClusterIDConflictError, match="already used by remote cluster 'c2'"):
        ids.reserve("c3", 2)
    ids.reserve("c2", 5)  # the remote changed its ID: the old one is free again
    ids.reserve("c3", 2)
    ids.release("c3")
    ids.reserve("c4", 2)
    assert ids.get("c2") == 5 and ids.get("c3") is None and ids.get("c4") == 2
