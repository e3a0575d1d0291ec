"""The etcd v3 implementation of the kvstore seam: ``EtcdClient`` (grpc.aio) and ``EtcdConfig``."""

from apiserver.kvstore.etcd.auth import Grant, KeyRange, Permission
from apiserver.kvstore.etcd.client import EtcdClient
from apiserver.kvstore.etcd.config import EtcdConfig, EtcdConfigError
from apiserver.kvstore.etcd.tls import EtcdTLSError

__all__ = ["EtcdClient", "EtcdConfig", "EtcdConfigError", "EtcdTLSError", "Grant", "KeyRange", "Permission"]
