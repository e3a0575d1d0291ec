"""Benchmarks of the exporter and KVStoreMesh against etcd's own ceiling (run ``python bench/run.py``).

Nothing here is imported by the product; the package only exists so that the driver and its child
processes (``python -m bench._kubesim_child`` ...) share the data set and helpers.
"""
