"""``python -m localmesh.kubelet --kubeconfig PATH --node-name N``: the local kubelet as its own process.

Pods reach the API server at the kubeconfig's server port on their 127.0.0.1; the kubeconfig's CA
becomes their service account ``ca.crt``. Stops (cleanly, removing everything it made) on SIGINT or
SIGTERM; exit codes: 0 stopped, 1 failed, 2 bad arguments or not root.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from apiserver._logging import configure_logging, get_logger
from apiserver.kube import KubeConfigError, KubeOptions, build_client
from apiserver.runner import EXIT_FAILURE, EXIT_USAGE, PartRunner, serve
from localmesh.kubelet._backoff import BackoffPolicy
from localmesh.kubelet._config import IMAGE_REPOSITORY, KubeletConfig
from localmesh.kubelet._kubelet import Kubelet
from localmesh.kubelet._state import DEFAULT_ROOT
from localmesh.kubelet._sys import NotRootError, require_root

log = get_logger("localmesh.kubelet")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localmesh.kubelet", description=__doc__)
    parser.add_argument("--kubeconfig", required=True, type=Path, help="kubeconfig of the API server")
    parser.add_argument("--node-name", default="localmesh-node", help="the node whose pods this kubelet runs")
    parser.add_argument("--image", action="append", default=[], metavar="REPOSITORY",
                        help=f"image repository this kubelet runs (repeatable; default {IMAGE_REPOSITORY})")
    parser.add_argument("--state-root", type=Path, default=DEFAULT_ROOT, help=f"default {DEFAULT_ROOT}")
    parser.add_argument("--pod-subnet", default=None, help="IPv4 /24 for pods (default: a free one of 10.201/16)")
    parser.add_argument("--backoff-initial", type=float, default=10.0, help="crash-loop back-off start (s)")
    parser.add_argument("--backoff-max", type=float, default=300.0, help="crash-loop back-off maximum (s)")
    return parser.parse_args(argv)


def _api_endpoint(kubeconfig: Path) -> tuple[tuple[str, int], bytes]:
    doc = yaml.safe_load(kubeconfig.read_text())
    current = doc.get("current-context")
    context = next(c["context"] for c in doc["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    url = urlsplit(cluster["server"])
    port = url.port or (443 if url.scheme == "https" else 80)
    ca = base64.b64decode(cluster.get("certificate-authority-data") or "")
    return (url.hostname or "127.0.0.1", port), ca


async def run(args: argparse.Namespace) -> int:
    address, ca = _api_endpoint(args.kubeconfig)
    config = KubeletConfig(node_name=args.node_name, images=tuple(args.image) or (IMAGE_REPOSITORY,),
                           state_root=args.state_root, pod_subnet=args.pod_subnet, api_ca_pem=ca,
                           backoff=BackoffPolicy(initial=args.backoff_initial, maximum=args.backoff_max))

    async def main(runner: PartRunner) -> None:
        client = await build_client(KubeOptions(kubeconfig_path=str(args.kubeconfig)))
        runner.on_stop("kubernetes client", client.close)
        kubelet = Kubelet(client.api_client, config, api_address=address)
        await runner.start("kubelet", kubelet.start, kubelet.stop)

    return await serve("kubelet", main)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    try:
        require_root()
        return asyncio.run(run(args))
    except NotRootError as exc:
        log.error(str(exc))
        return EXIT_USAGE
    except (KubeConfigError, OSError, ValueError, KeyError, StopIteration) as exc:
        log.error("Local kubelet failed", error=str(exc))
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
