"""Who gets whom as a peer, per connection mode (``cilium-cli/clustermesh/clustermesh.go``). Pure.

- ``unicast``: only the local cluster gets the remotes;
- ``bidirectional``: the local cluster gets every remote, every remote gets the local cluster;
- ``mesh``: a full mesh of all clusters given: everyone gets everyone else, never itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from apiserver.ctl._errors import CtlError
from apiserver.ctl._names import CONNECTION_MODES


def check_mode(mode: str) -> None:
    if mode not in CONNECTION_MODES:
        raise CtlError(f"{mode} is not a correct connection mode.",
                       "Available connection modes: bidirectional, mesh, unicast")


def plan(mode: str, local: str, remotes: Sequence[str]) -> dict[str, list[str]]:
    """Cluster name -> the names it must get (connect) or lose (disconnect) as peers."""
    check_mode(mode)
    if len(set(remotes)) != len(remotes):
        dup = next(r for r in remotes if remotes.count(r) > 1)
        raise CtlError(f"Multiple remote clusters have the same name '{dup}'",
                       "every cluster of a mesh needs its own cluster-name")
    result = {local: [r for r in remotes if r != local]}
    if mode == "bidirectional":
        for remote in remotes:
            result[remote] = [local]
    elif mode == "mesh":
        everyone = [local, *remotes]
        for remote in remotes:
            result[remote] = [c for c in everyone if c != remote]
    return result
