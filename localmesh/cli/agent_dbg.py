"""``clustermesh-apiserver agent-dbg status|services [-o json]``: ask the agent of this pod.

``status -o json`` prints ``{"cluster-mesh": {...}}``, the part of ``cilium-dbg status -o json``
that ``clustermeshctl status`` reads; ``services`` the merged global services, every backend of every
cluster per namespace/name.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

HELP = "Query the local runtime's agent (ClusterMesh status, merged global services)"
TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-H", "--host", default="127.0.0.1:9890", help="Agent API address (default 127.0.0.1:9890)")
    sub = parser.add_subparsers(dest="dbg_command", metavar="COMMAND")
    for name, help in (("status", "ClusterMesh status of this agent"), ("services", "Merged global services")):
        child = sub.add_parser(name, help=help)
        child.add_argument("-o", "--output", default="", choices=["", "json"], help="json (default: text)")


def fetch(host: str, path: str) -> Any:
    base = host if host.startswith("http") else f"http://{host}"
    with urllib.request.urlopen(base.rstrip("/") + path, timeout=TIMEOUT) as resp:
        return json.loads(resp.read())


def render_services(doc: dict[str, Any]) -> str:
    lines = []
    for service in doc.get("services") or []:
        lines.append(f"{service['namespace']}/{service['name']}:")
        for cluster, backends in service["backends"].items():
            addresses = [f"{b['ip']}:{port['Port']}" for b in backends for port in (b["ports"] or {}).values()]
            lines.append(f"  {cluster}: {', '.join(addresses) or 'no backends'}")
    for rejected in doc.get("rejected") or []:
        lines.append(f"rejected {rejected['resource']} {rejected['key']} of {rejected['cluster']}: "
                     f"{rejected['reason']}")
    return "\n".join(lines) + ("\n" if lines else "")


def run(args: argparse.Namespace) -> int:
    from apiserver.kvstoremesh import format_status, status_from_json
    from localmesh.agent import CLUSTER_MESH_PATH, SERVICES_PATH

    if args.dbg_command not in ("status", "services"):
        print("Usage: clustermesh-apiserver agent-dbg status|services [-o json]", file=sys.stderr)
        return 2
    try:
        doc = fetch(args.host, CLUSTER_MESH_PATH if args.dbg_command == "status" else SERVICES_PATH)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"Failed to retrieve status information: is the agent running on {args.host}? ({exc})", file=sys.stderr)
        return 1
    if args.dbg_command == "status":
        if args.output == "json":
            print(json.dumps({"cluster-mesh": doc}, indent=2))
        else:
            sys.stdout.write(format_status([status_from_json(c) for c in doc.get("clusters") or []]).replace(
                "KVStoreMesh:", "ClusterMesh:", 1))
            print(f"Global services: {doc.get('num-global-services', 0)}")
    elif args.output == "json":
        print(json.dumps(doc, indent=2))
    else:
        sys.stdout.write(render_services(doc))
    return 0
