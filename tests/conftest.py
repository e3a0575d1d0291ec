"""Shared fixtures live in the package (``localmesh.testing``) so demo and benchmarks reuse them."""

pytest_plugins = [
    "localmesh.testing.etcd_fixtures",
    "localmesh.testing.kubesim_fixtures",
]
