"""``clustermesh-apiserver kvstoremesh-dbg status [-o json|yaml] [--verbose] [-H ADDR]``.

Reads ``GET /v1/cluster`` from a running KVStoreMesh and prints upstream's text layout, or the
payload as indented JSON/YAML (``cilium clustermesh status`` runs it with ``-o json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import yaml

from apiserver.kvstoremesh import CLUSTER_PATH, DEFAULT_API_SERVE_ADDR, format_status, status_from_json

HELP = "CLI for interacting with KVStoreMesh"
REQUEST_TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-H", "--host", "--server-address", dest="host", default=DEFAULT_API_SERVE_ADDR,
                        help=f"URI to server-side API (default {DEFAULT_API_SERVE_ADDR})")
    sub = parser.add_subparsers(dest="dbg_command", metavar="COMMAND")
    status = sub.add_parser("status", help="Display status of remote clusters")
    status.add_argument("-o", "--output", default="", choices=["", "json", "yaml"],
                        help="json| yaml (default: human-readable text)")
    status.add_argument("--verbose", action="store_true",
                        help="Output verbose status information for ready clusters as well")
    status.add_argument("-H", "--host", "--server-address", dest="status_host", default=None,
                        help=argparse.SUPPRESS)


def base_url(host: str) -> str:
    """``localhost:9889``, ``tcp://h:p`` or ``http://h:p`` -> ``http://h:p``."""
    for scheme in ("http://", "https://"):
        if host.startswith(scheme):
            return host.rstrip("/")
    if host.startswith("tcp://"):
        host = host[len("tcp://"):]
    return "http://" + host.rstrip("/")


def fetch_clusters(host: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(base_url(host) + CLUSTER_PATH, timeout=REQUEST_TIMEOUT) as resp:
        payload = json.loads(resp.read())
    if payload is None:
        return []
    if not isinstance(payload, list):
        raise ValueError("unexpected response: not a JSON array")
    return payload


def run(args: argparse.Namespace) -> int:
    if args.dbg_command != "status":
        print("Usage: clustermesh-apiserver kvstoremesh-dbg status [-o json] [--verbose] [-H ADDR]",
              file=sys.stderr)
        return 2
    host = args.status_host or args.host
    try:
        clusters = fetch_clusters(host)
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, OSError) else exc
        if isinstance(reason, ConnectionRefusedError):
            print(f"Failed to retrieve status information: is KVStoreMesh running and serving the API on "
                  f"{host}?")
        else:
            print(f"Failed to retrieve status information: {reason}")
        return 1
    except (OSError, ValueError) as exc:
        print(f"Failed to retrieve status information: {exc}")
        return 1
    if args.output == "json":
        print(json.dumps(clusters, indent=2, ensure_ascii=False))
    elif args.output == "yaml":
        print(yaml.safe_dump(clusters, sort_keys=False, allow_unicode=True), end="")
    else:
        statuses = [status_from_json(c) for c in clusters]
        sys.stdout.write(format_status(statuses, verbose=args.verbose))
    return 0
