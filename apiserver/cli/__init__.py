"""``clustermesh-apiserver`` command: one subcommand per module, imported only when used.

Each subcommand module exposes ``HELP: str``, ``add_arguments(parser)`` and ``run(args) -> int``.
Subcommands of the local tooling (``kubesim``, ``demo``, ``agent``, ``agent-dbg``) live in the ``localmesh``
package, which the container image does not carry; they are named here only as strings, so the product never
imports them.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

SUBCOMMANDS: dict[str, str] = {
    "clustermesh": "apiserver.cli.clustermesh",
    "kvstoremesh": "apiserver.cli.kvstoremesh",
    "kvstoremesh-dbg": "apiserver.cli.kvstoremesh_dbg",
    "clustermesh-dbg": "apiserver.cli.clustermesh_dbg",
    "etcdinit": "apiserver.cli.etcdinit",
    "kubesim": "localmesh.cli.kubesim",
    "pki": "apiserver.cli.pki",
    "demo": "localmesh.cli.demo",
    "agent": "localmesh.cli.agent",
    "agent-dbg": "localmesh.cli.agent_dbg",
    "version": "apiserver.cli.version",
}
EXTRA_HINT = "pip install 'clustermesh-apiserver[local]'"


def _load(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(SUBCOMMANDS[name])
    except ModuleNotFoundError as exc:
        target = SUBCOMMANDS[name]
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            return None
        raise


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clustermesh-apiserver",
        description="Cilium Cluster Mesh API server and KVStoreMesh, in Python.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        if only is not None and name != only:
            continue
        module = _load(name)
        if module is None:
            continue
        child = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(child)
        child.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    # Only the chosen subcommand's module is imported: start-up stays fast.
    only = args_list[0] if args_list and args_list[0] in SUBCOMMANDS else None
    if only is not None and _load(only) is None:
        print(f"clustermesh-apiserver: '{only}' is part of the local tooling, which is not installed here; "
              f"install it with: {EXTRA_HINT}", file=sys.stderr)
        return 2
    parser = build_parser(only)
    args = parser.parse_args(args_list)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    code: int = args._run(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
