"""What the API server asks of the node that runs a pod: its containers' logs and exec.

In Kubernetes the API server proxies ``pods/log`` and ``pods/exec`` to the kubelet of the pod's node.
Here the emulator holds one ``NodeRuntime`` (the local kubelet, when one runs) and calls it directly;
with none attached those subresources answer as an API server whose kubelet cannot be reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol


class ContainerNotFoundError(LookupError):
    """No such pod or container on this node, or (for ``previous``) no terminated instance of it.
    The message is the API server's text, e.g. ``container "x" in pod "p" is not available``."""


class NodeRuntime(Protocol):
    def log_file(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> Path:
        """The file holding the container's combined stdout and stderr, as kubelet keeps it: the current
        instance's, or with ``previous`` the one before the last restart. Raises ``ContainerNotFoundError``."""
        ...

    def is_running(self, namespace: str, pod: str, container: str) -> bool:
        """Whether the container's current instance still runs (``logs -f`` stops following when not)."""
        ...

    async def exec(self, namespace: str, pod: str, container: str, argv: Sequence[str], *,
                   stdin: bool, tty: bool) -> asyncio.subprocess.Process:
        """Start ``argv`` inside the container (its network and mount namespaces, its env), with pipes for
        stdout and stderr, and for stdin when asked. Raises ``ContainerNotFoundError``; a command that
        cannot be started raises ``FileNotFoundError`` / ``PermissionError`` as exec would."""
        ...
