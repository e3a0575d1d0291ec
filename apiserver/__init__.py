"""clustermesh-apiserver for Python: Cilium's clustermesh-apiserver and KVStoreMesh.

Data flows one way: ``kube`` (list/watch) -> ``convert`` (pure) -> ``kvstore`` (sync store) -> etcd.
``kvstoremesh`` mirrors remote etcds into the local one; ``server`` serves health and metrics.
"""

__version__ = "0.1.0"
