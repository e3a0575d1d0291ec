"""The rendered manifests applied with the real ``kubectl apply --server-side`` to the emulator."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from deploy_render import KUBECTL, Obj, deploy_tree, kustomize, render

from localmesh.kubesim import KubeSim

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")


async def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    command = [KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={kubeconfig.parent / 'cache'}", *args]
    return await asyncio.to_thread(subprocess.run, command, input=stdin, capture_output=True, text=True,
                                   timeout=120, env={"HOME": str(kubeconfig.parent)})


def contains(stored: object, applied: object) -> bool:
    """Whether every field that was applied is stored with its value (the server adds defaults)."""
    if isinstance(applied, dict):
        return isinstance(stored, dict) and all(k in stored and contains(stored[k], v) for k, v in applied.items())
    if isinstance(applied, list):
        return isinstance(stored, list) and len(stored) == len(applied) and all(
            contains(s, a) for s, a in zip(stored, applied, strict=True))
    return stored == applied


def test_contains() -> None:
    assert contains({"a": [{"b": 1, "c": 2}], "d": 3}, {"a": [{"b": 1}]})
    assert not contains({"a": [{"b": 1}]}, {"a": [{"b": 2}]})
    assert not contains({"a": [1, 2]}, {"a": [1]})


def api_version_and_name(obj: Obj) -> tuple[str, str, str, str | None]:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"], obj["metadata"].get("namespace")


@pytest.mark.parametrize("target", ["base", "overlays/tls", "overlays/no-kvstoremesh"])
async def test_server_side_apply_and_read_back(kubesim: KubeSim, kubeconfig_path: Path, tmp_path: Path,
                                               target: str) -> None:
    tree = deploy_tree(tmp_path)
    manifest = kustomize(tree / target)
    objs = render(tree, target)
    applied = await kubectl(kubeconfig_path, "apply", "--server-side", "--field-manager=deploy-test", "-f", "-",
                            stdin=manifest)
    assert applied.returncode == 0, applied.stderr
    assert len(applied.stdout.strip().splitlines()) == len(objs)
    assert all(line.endswith(" serverside-applied") for line in applied.stdout.strip().splitlines())
    for obj in objs:
        api_version, kind, name, namespace = api_version_and_name(obj)
        stored = kubesim.get(api_version, kind, name, namespace)
        assert stored is not None, f"{kind}/{name}"
        for field in ("spec", "data", "rules", "roleRef", "subjects", "type"):
            assert contains(stored.get(field), obj.get(field)), f"{kind}/{name}.{field}"
        assert stored["metadata"]["labels"] == obj["metadata"].get("labels")
        # And through kubectl, as an operator would read it.
        resource = f"{kind.lower()}.{api_version.split('/')[0]}" if "/" in api_version else kind.lower()
        args = ["get", resource, name, "-o", "jsonpath={.metadata.uid}"]
        got = await kubectl(kubeconfig_path, *args, *(["-n", namespace] if namespace else []))
        assert got.returncode == 0 and got.stdout == stored["metadata"]["uid"], got.stderr
    again = await kubectl(kubeconfig_path, "apply", "--server-side", "--field-manager=deploy-test", "-f", "-",
                          stdin=manifest)
    assert again.returncode == 0, again.stderr
