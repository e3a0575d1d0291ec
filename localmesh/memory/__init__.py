"""In-memory test doubles of the product's seams: an etcd (``kv.MemoryKV``) and an etcd auth store
(``auth.MemoryAuthAdmin``). For fast unit tests only; the integration tests use real etcd."""
