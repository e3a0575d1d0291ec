"""A local kubelet: runs the pods of a (kubesim or any) Kubernetes API whose image is the project's own,
each as processes in its own network and mount namespaces, with probes, restarts, volumes, status,
logs and exec, and routes LoadBalancer addresses to their pods. Needs root.

    async with Kubelet(api_client, KubeletConfig(node_name="node-1"), api_address=("127.0.0.1", port)):
        ...
"""

from localmesh.kubelet._backoff import BackoffPolicy, CrashBackoff
from localmesh.kubelet._config import IMAGE_REPOSITORY, KubeletConfig
from localmesh.kubelet._kubelet import Kubelet
from localmesh.kubelet._local import local_kubelet
from localmesh.kubelet._state import DEFAULT_ROOT, sweep
from localmesh.kubelet._sys import NotRootError

__all__ = ["DEFAULT_ROOT", "IMAGE_REPOSITORY", "BackoffPolicy", "CrashBackoff", "Kubelet", "KubeletConfig",
           "NotRootError", "local_kubelet", "sweep"]
