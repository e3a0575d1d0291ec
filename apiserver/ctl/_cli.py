"""``clustermeshctl``: cilium-cli's ``cilium clustermesh`` subcommands and flags, plus ``doctor``.

Flags follow pflag: ``--flag=value`` or ``--flag value``, booleans as ``--wait`` / ``--wait=false``,
lists repeatable and comma-separated, durations as ``15m``. The global flags (``--context``,
``--kubeconfig``, ``-n/--namespace``) go before or after the subcommand. A failure prints one
``Error:`` line and one hint line on stderr and exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from apiserver.ctl._errors import CtlError
from apiserver.ctl._kube import Kube
from apiserver.ctl._names import DEFAULT_NAMESPACE
from apiserver.goflags import CommaListAction, add_bool, go_bool, go_duration
from apiserver.kube import KubeAPIError

PROG = "clustermeshctl"
_GLOBAL_DEFAULTS = {"context": "", "kubeconfig": "", "namespace": DEFAULT_NAMESPACE}
_FAILURE = {"enable": "Unable to enable ClusterMesh", "disable": "Unable to disable ClusterMesh",
            "connect": "Unable to connect cluster", "disconnect": "Unable to disconnect clusters",
            "status": "Unable to determine status", "doctor": "Unable to check the clusters"}


def _add_globals(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--context", default=default, help="Kubernetes configuration context")
    parser.add_argument("--kubeconfig", default=default, help="Path to the kubeconfig file")
    parser.add_argument("-n", "--namespace", default=default,
                        help=f"Namespace Cilium is running in (default {DEFAULT_NAMESPACE})")


def _connect_flags(parser: argparse.ArgumentParser, *, endpoints: bool) -> None:
    parser.add_argument("--connection-mode", default="bidirectional",
                        help="Connection mode: unicast, bidirectional or mesh (default bidirectional)")
    parser.add_argument("--destination-context", action=CommaListAction, default=[],
                        help="Comma separated list of Kubernetes configuration contexts of destination cluster")
    if endpoints:
        parser.add_argument("--destination-endpoint", action=CommaListAction, default=[],
                            help="IP:PORT of the ClusterMesh service of the destination cluster")
        parser.add_argument("--source-endpoint", action=CommaListAction, default=[],
                            help="IP:PORT of the ClusterMesh service of the source cluster")
        parser.add_argument("--parallel", type=int, default=1, help="Accepted for compatibility")
        add_bool(parser, "--allow-mismatching-ca", False,
                 "Connect clusters with different CAs: each trusts a bundle of all CAs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Cilium Cluster Mesh management, as "
                                     "'cilium clustermesh' (enable, connect, status) plus doctor")
    _add_globals(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help, description=help)
        _add_globals(child, suppress=True)
        return child

    enable = command("enable", "Enable ClusterMesh ability in a cluster")
    enable.add_argument("--service-type", default="",
                        help="Type of Kubernetes service to expose control plane { LoadBalancer | NodePort }")
    enable.add_argument("--enable-kvstoremesh", "--kvstore-mesh", dest="kvstoremesh", type=go_bool, nargs="?",
                        const=True, default=True, metavar="BOOL",
                        help="Enable kvstoremesh, which caches remote cluster information in the local kvstore "
                             "(default true)")
    enable.add_argument("--manifests", default="", help="Directory of the mesh API pod's manifests "
                        "(default: the repository's deploy/base)")
    enable.add_argument("--apiserver-image", default="", help="Container image of the mesh API pod")
    enable.add_argument("--inherit-ca", default="", metavar="CONTEXT",
                        help="Copy Secret cilium-ca from this context when the cluster has none")
    disable = command("disable", "Disable ClusterMesh ability in a cluster")
    disable.add_argument("--manifests", default="", help="Directory of the mesh API pod's manifests")
    _connect_flags(command("connect", "Connect to a remote cluster"), endpoints=True)
    _connect_flags(command("disconnect", "Disconnect from a remote cluster"), endpoints=False)
    status = command("status", "Show status of ClusterMesh")
    add_bool(status, "--wait", False, "Wait until status is successful")
    status.add_argument("--wait-duration", type=go_duration, default=900.0, help="Maximum time to wait (default 15m)")
    status.add_argument("-o", "--output", default="summary", choices=("json", "summary"),
                        help="Output format. One of: json, summary")
    doctor = command("doctor", "Check the Cluster Mesh prerequisites across clusters (--context A --context B ...)")
    doctor.add_argument("--destination-context", action=CommaListAction, default=[],
                        help="More contexts to check (besides --context)")
    return parser


def _contexts(argv: Sequence[str]) -> list[str]:
    """Every ``--context`` value in order (doctor takes several)."""
    found = []
    for i, arg in enumerate(argv):
        if arg == "--context" and i + 1 < len(argv):
            found.append(argv[i + 1])
        elif arg.startswith("--context="):
            found.append(arg.split("=", 1)[1])
    return found


async def _run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from apiserver.ctl import _connect, _doctorcmd, _enable, _statuscmd

    out = _printer(sys.stdout)
    log = _printer(sys.stderr if getattr(args, "output", "") == "json" else sys.stdout)
    async with AsyncExitStack() as stack:
        async def kube(context: str) -> Kube:
            client = await Kube.connect(args.kubeconfig, context)
            stack.push_async_callback(client.close)
            return client

        ns = args.namespace
        if args.command == "enable":
            local = await kube(args.context)
            if args.inherit_ca:
                await _enable.inherit_ca(local, await kube(args.inherit_ca), ns, log)
            await _enable.enable(local, _enable.EnableParams(
                ns, args.service_type, args.kvstoremesh, args.manifests, args.apiserver_image), log)
            return 0
        if args.command == "disable":
            await _enable.disable(await kube(args.context), ns, args.manifests, log)
            return 0
        if args.command in ("connect", "disconnect"):
            local = await kube(args.context)
            remotes = [await kube(c) for c in args.destination_context]
            params = _connect.ConnectParams(
                ns, args.connection_mode, tuple(getattr(args, "destination_endpoint", ())),
                tuple(getattr(args, "source_endpoint", ())), bool(getattr(args, "allow_mismatching_ca", False)))
            action: Callable[..., Awaitable[None]] = (_connect.connect if args.command == "connect"
                                                      else _connect.disconnect)
            await action(local, remotes, params, log)
            return 0
        if args.command == "status":
            return await _statuscmd.status(await kube(args.context), _statuscmd.StatusParams(
                ns, args.wait, args.wait_duration, args.output), out, log)
        if args.command == "doctor":
            contexts = list(dict.fromkeys(_contexts(argv) + list(args.destination_context)))
            return await _doctorcmd.doctor([await kube(c) for c in contexts], ns, log)
    raise AssertionError(args.command)


def _printer(stream: Any) -> Callable[[str], None]:
    def write(line: str) -> None:
        print(line, file=stream, flush=True)

    return write


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    for key, value in _GLOBAL_DEFAULTS.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return asyncio.run(_run(args, args_list))
    except CtlError as exc:
        print(f"Error: {_FAILURE[args.command]}: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"💡 {exc.hint}", file=sys.stderr)
    except KubeAPIError as exc:
        print(f"Error: {_FAILURE[args.command]}: Kubernetes API: {exc}", file=sys.stderr)
        print("💡 check the object named in the message, and the permissions of your kubeconfig user",
              file=sys.stderr)
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
    return 1
