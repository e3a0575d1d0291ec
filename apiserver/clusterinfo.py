"""Identity of a cluster in the mesh (name, ID, max connected clusters) and its validation rules.

Pure code: no I/O. Rules from upstream ``pkg/clustermesh/types/option.go``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_CLUSTER_NAME = "default"
CLUSTER_NAME_MAX_LENGTH = 32
VALID_MAX_CONNECTED_CLUSTERS = (255, 511)
_CLUSTER_NAME_RE = re.compile(r"^([a-z0-9][-a-z0-9]*)?[a-z0-9]$")


class InvalidClusterInfo(ValueError):
    """The cluster name, ID or max-connected-clusters value is not acceptable."""


def validate_cluster_name(name: str) -> None:
    if not name:
        raise InvalidClusterInfo("cluster name must not be empty")
    if len(name) > CLUSTER_NAME_MAX_LENGTH:
        raise InvalidClusterInfo(
            f"invalid cluster name {name!r}: must not be more than {CLUSTER_NAME_MAX_LENGTH} characters"
        )
    if not _CLUSTER_NAME_RE.match(name):
        raise InvalidClusterInfo(
            f"invalid cluster name {name!r}: must consist of lower case alphanumeric characters or '-', "
            "and must start and end with an alphanumeric character"
        )


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    name: str = DEFAULT_CLUSTER_NAME
    id: int = 0
    max_connected_clusters: int = 255

    @property
    def cluster_id_max(self) -> int:
        return self.max_connected_clusters

    def validate(self, *, strict: bool = False) -> None:
        """Raise ``InvalidClusterInfo`` unless the triple is usable.

        Non-strict accepts ID 0 ("not part of a mesh"); strict (KVStoreMesh) requires 1..max.
        """
        if self.max_connected_clusters not in VALID_MAX_CONNECTED_CLUSTERS:
            raise InvalidClusterInfo(
                f"invalid max-connected-clusters {self.max_connected_clusters}: "
                "must be one of 255 or 511"
            )
        low = 1 if strict else 0
        if not low <= self.id <= self.cluster_id_max:
            raise InvalidClusterInfo(
                f"invalid cluster-id {self.id}: must be in range {low}..{self.cluster_id_max}"
            )
        validate_cluster_name(self.name)
        if self.id != 0 and self.name == DEFAULT_CLUSTER_NAME:
            raise InvalidClusterInfo(
                f"cannot use default cluster name ({DEFAULT_CLUSTER_NAME!r}) with cluster-id {self.id}"
            )
        if strict and self.name == DEFAULT_CLUSTER_NAME:
            raise InvalidClusterInfo(f"cluster name must not be {DEFAULT_CLUSTER_NAME!r}")
