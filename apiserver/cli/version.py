"""``clustermesh-apiserver version``."""

from __future__ import annotations

import argparse
import platform

from apiserver import __version__

HELP = "Print the version"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    print(f"clustermesh-apiserver {__version__} (python {platform.python_version()}, {platform.machine()})")
    return 0
