"""``clustermesh-apiserver clustermesh-dbg verify``: is etcd what Kubernetes implies?

Takes the exporter's own flags (Kubernetes, ``--kvstore-opt``, cluster identity, namespace
filtering), computes what the exporter would write (``apiserver.clustermesh.verify``) and reports,
per prefix, the keys missing from etcd, stale in etcd and differing, with the first few of each.
``--kvstoremesh --clustermesh-config DIR`` instead compares each remote's state with the local
``cilium/cache/.../<R>`` byte for byte. Exit 0 only when everything is equal; 1 when not; 2 when
it could not be checked (bad flags, unreachable etcd or Kubernetes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import TYPE_CHECKING

from apiserver._logging import configure_logging
from apiserver.cli.clustermesh import add_arguments as add_exporter_arguments

if TYPE_CHECKING:
    from apiserver.clustermesh.options import ExporterOptions
    from apiserver.kvstore.drift import DriftReport
    from apiserver.kvstore.etcd import EtcdClient, EtcdConfig

HELP = "Debug tools of the ClusterMesh API server (verify: compare etcd with Kubernetes)"
EXIT_EQUAL, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dbg_command", metavar="COMMAND")
    verify = sub.add_parser("verify", help="Compare what etcd holds with what Kubernetes implies")
    add_exporter_arguments(verify)
    verify.add_argument("-o", "--output", default="", choices=["", "json"], help="json (default: text)")
    verify.add_argument("--show", type=int, default=5, help="Keys listed per kind of difference (default 5)")
    verify.add_argument("--timeout", type=float, default=300.0,
                        help="Seconds allowed for reading Kubernetes and etcd (default 300)")
    verify.add_argument("--kvstoremesh", action="store_true",
                        help="Compare KVStoreMesh's caches with the remote clusters instead")
    verify.add_argument("--clustermesh-config", default="/var/lib/cilium/clustermesh",
                        help="KVStoreMesh mode: the directory of remote etcd configurations")


def run(args: argparse.Namespace) -> int:
    if args.dbg_command != "verify":
        print("Usage: clustermesh-apiserver clustermesh-dbg verify [exporter flags] [-o json]", file=sys.stderr)
        return EXIT_ERROR
    configure_logging(False)
    logging.getLogger().setLevel(logging.WARNING)  # the report goes to stdout; only trouble to stderr
    from apiserver.clustermesh.options import ExporterOptions, InvalidOptions
    from apiserver.kvstore.etcd import EtcdConfig

    try:
        options = ExporterOptions.from_args(args)
        etcd_config = EtcdConfig.from_options(options.kvstore)
    except (InvalidOptions, ValueError, OSError) as exc:
        print(f"clustermesh-dbg verify: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    try:
        reports = asyncio.run(_verify(args, options, etcd_config))
    except Exception as exc:
        print(f"clustermesh-dbg verify: cannot verify: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.output == "json":
        doc = reports[0].as_dict(args.show) if len(reports) == 1 else [r.as_dict(args.show) for r in reports]
        print(json.dumps(doc, indent=2))
    else:
        print("\n".join(r.text(args.show) for r in reports))
    return EXIT_EQUAL if all(r.equal for r in reports) else EXIT_DIFFERENT


async def _verify(args: argparse.Namespace, options: ExporterOptions, etcd_config: EtcdConfig) -> list[DriftReport]:
    from apiserver.kvstore.etcd import EtcdClient

    etcd = await EtcdClient.connect(etcd_config, timeout=min(args.timeout, 30.0))
    try:
        if args.kvstoremesh:
            return [await _verify_caches(args, options, etcd)]
        from apiserver.clustermesh.verify import verify_export
        from apiserver.kube import KubeOptions, build_client

        kube = await build_client(KubeOptions.from_args(args))
        try:
            return [await verify_export(options, kube, etcd, timeout=args.timeout)]
        finally:
            await kube.close()
    finally:
        await etcd.close()


async def _verify_caches(args: argparse.Namespace, options: ExporterOptions, local: EtcdClient) -> DriftReport:
    from apiserver.kvstore.drift import DriftReport
    from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
    from apiserver.kvstoremesh._configdir import scan_config_dir
    from apiserver.kvstoremesh.verify import verify_cache

    cluster = options.cluster
    report = DriftReport(f"KVStoreMesh of cluster {cluster.name}: remote state vs local cache")
    remotes = scan_config_dir(args.clustermesh_config)
    if not remotes:
        report.problems.append(f"no remote cluster configuration in {args.clustermesh_config}")
    for name, config_file in sorted(remotes.items()):
        try:
            remote = await EtcdClient.connect(EtcdConfig.from_yaml(config_file.path),
                                              timeout=min(args.timeout, 30.0), check_cluster_id=False)
        except Exception as exc:
            report.problems.append(f"remote {name}: cannot connect: {exc}")
            continue
        try:
            await verify_cache(cluster, local, name, remote, report)
        finally:
            await remote.close()
    return report
