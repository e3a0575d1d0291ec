"""kvstore: etcd access (the ``KVBackend`` seam), leases, rate limits and the batching sync store."""
