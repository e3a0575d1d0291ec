"""The exporter: Kubernetes (list/watch) -> converters -> sync stores -> etcd (``clustermesh`` command)."""
