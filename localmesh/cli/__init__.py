"""Subcommands of ``clustermesh-apiserver`` that belong to the local tooling (``kubesim``, ``demo``)."""
