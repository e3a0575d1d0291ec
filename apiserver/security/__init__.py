"""Security of the clustermesh etcd: who may read and write what, and how.

- ``roles``: the users, roles and key ranges as data (pure); ``users_config``: the remote users
  file and the changes it calls for (pure).
- ``etcd_setup`` + ``temp_etcd``: create those users and roles in a fresh etcd data dir (``etcdinit``).
- ``users``: ``UsersManager`` keeps the per-cluster ``remote-<peer>`` users equal to the file.
- ``pki`` (test/dev X.509 helpers) and ``devpki``: the development PKI in the Helm file layout.
"""
