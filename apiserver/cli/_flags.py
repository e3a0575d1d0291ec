"""Flags every upstream daemon accepts (the Go value parsers are ``apiserver.goflags``)."""

from __future__ import annotations

import argparse

from apiserver.goflags import CommaListAction, KeyValueAction, add_bool


def add_common_daemon_flags(parser: argparse.ArgumentParser, *, gops_port: int) -> None:
    """Flags every upstream daemon accepts; the ones we have no use for are accepted and ignored."""
    add_bool(parser, "--debug", False, "Enable debug logging")
    parser.add_argument("-D", dest="debug", action="store_const", const=True, help="Same as --debug")
    parser.add_argument("--log-driver", action=CommaListAction, default=[], help="Logging endpoints")
    parser.add_argument("--log-opt", action=KeyValueAction, default={},
                        help="Log driver options (format=text|json)")
    add_bool(parser, "--enable-gops", True, "Accepted for compatibility; no gops agent in Python")
    parser.add_argument("--gops-port", type=int, default=gops_port, help="Accepted for compatibility")
    add_bool(parser, "--pprof", False, "Accepted for compatibility")
    parser.add_argument("--pprof-address", default="localhost", help="Accepted for compatibility")
    parser.add_argument("--pprof-port", type=int, default=0, help="Accepted for compatibility")
    parser.add_argument("--pprof-mutex-profile-fraction", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pprof-block-profile-rate", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--shell-sock-path", default="/var/run/cilium/shell.sock", help=argparse.SUPPRESS)
    parser.add_argument("--controller-group-metrics", action=CommaListAction, default=[],
                        help="Accepted for compatibility")
