"""``clustermesh-apiserver pki``: write a development PKI (wiring only; see ``apiserver.security.devpki``)."""

from __future__ import annotations

import argparse
import sys

from apiserver.goflags import CommaListAction
from apiserver.security.devpki import (
    DEFAULT_ENDPOINT,
    DEFAULT_NAMESPACE,
    DEFAULT_VALIDITY_DAYS,
    DevPKIRequest,
    write_dev_pki,
)

HELP = (
    "Generate a DEVELOPMENT PKI (CA, etcd server certificate, admin/local/remote client certificates "
    "and etcd client configs) in the clustermesh-apiserver file layout. For development and tests "
    "only: in production the certificates come from the Cilium operator / Helm (certgen) or "
    "cert-manager, and private keys here are written unencrypted."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="Output directory (created if missing)")
    parser.add_argument("--cluster-name", required=True, help="Name of the local Cilium cluster")
    parser.add_argument("--peer", action=CommaListAction, default=[], metavar="NAME",
                        help="A remote cluster that gets a remote-<NAME> certificate (repeatable)")
    parser.add_argument("--namespace", default=DEFAULT_NAMESPACE,
                        help="Namespace for the clustermesh-apiserver.<ns>.svc server SAN")
    parser.add_argument("--endpoint", action=CommaListAction, default=[], metavar="URL",
                        help=f"etcd endpoint written into the client configs (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--san", action=CommaListAction, default=[],
                        help="Extra server certificate SAN (DNS name or IP; repeatable)")
    parser.add_argument("--validity-days", type=int, default=DEFAULT_VALIDITY_DAYS,
                        help="Validity of every certificate, in days")
    parser.add_argument("--new-ca", action="store_true",
                        help="Generate a new CA even if DIR already has ca.crt/ca.key (default: reuse it, "
                             "so re-running rotates the leaf certificates only)")


def run(args: argparse.Namespace) -> int:
    request = DevPKIRequest(
        cluster_name=args.cluster_name,
        peers=tuple(args.peer),
        namespace=args.namespace,
        endpoints=tuple(args.endpoint) or (DEFAULT_ENDPOINT,),
        extra_sans=tuple(args.san),
        validity_days=args.validity_days,
    )
    try:
        written = write_dev_pki(request, args.out, new_ca=args.new_ca)
    except (ValueError, OSError) as exc:  # InvalidClusterInfo is a ValueError
        print(f"pki: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0
