"""Shared fixtures live in the package (``apiserver.testing``) so demo and benchmarks reuse them."""

pytest_plugins = [
    "apiserver.testing.etcd_fixtures",
    "apiserver.testing.kubesim_fixtures",
]
