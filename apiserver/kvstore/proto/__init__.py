"""Generated protobuf modules for the etcd v3 API subset we use (see ``generate.sh``).

Regenerate, never edit, the ``*_pb2.py`` files.
"""
