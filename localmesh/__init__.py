"""localmesh: the project's local tooling, kept out of the product package ``apiserver``.

The Kubernetes API emulator (``kubesim``), the local simulated mesh (``demo``), real-etcd and
emulator helpers for tests and benchmarks (``testing``) and in-memory test doubles of the product's
seams (``memory``). Installed with the ``[local]`` extra; the container image carries only ``apiserver``.
Nothing in ``apiserver`` imports from here.
"""
