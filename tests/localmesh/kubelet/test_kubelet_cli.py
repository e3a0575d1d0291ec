"""``clustermesh-apiserver kubesim --clusters 2 --tls --kubelet``: two local clusters whose Deployments run,
with real kubectl (scheduling onto the kubelet's Node, rollout status, logs, exec); SIGTERM stops it all."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import orjson

from localmesh.kubelet import DEFAULT_ROOT
from localmesh.testing.processes import child_process
from tests.localmesh.kubelet.conftest import IMAGE, eventually, exists, needs_root


async def _kubectl(kubeconfig: Path, *args: str, input: str | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "kubectl", "--kubeconfig", str(kubeconfig), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(input.encode() if input is not None else None)
    return proc.returncode or 0, out.decode(), err.decode()


DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": "default"},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "hello"}},
             "template": {"metadata": {"labels": {"app": "hello"}},
                          "spec": {"containers": [{"name": "main", "image": IMAGE,
                                                   "command": ["/bin/sh", "-c", "echo hello; exec sleep 3600"]}]}}},
}


def _runs_of(pid: int) -> list[Path]:
    runs = [d for d in DEFAULT_ROOT.iterdir() if (d / "state.json").exists()] if DEFAULT_ROOT.is_dir() else []
    return [d for d in runs if orjson.loads((d / "state.json").read_bytes())["owner"]["pid"] == pid]


@needs_root
async def test_kubesim_command_with_kubelets(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with child_process(
        sys.executable, "-m", "apiserver", "kubesim", "--clusters", "2", "--port", "0", "--tls", "--kubelet",
        "--kubeconfig-out", str(kubeconfig), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE) as proc:
        await eventually(lambda: exists(kubeconfig) or proc.returncode is not None)
        assert proc.returncode is None
        code, out, err = await _kubectl(kubeconfig, "--context", "cluster2", "get", "nodes", "-o", "name")
        assert (code, out) == (0, "node/cluster2-node\n"), err
        assert len(_runs_of(proc.pid)) == 2  # one kubelet per cluster
        code, _, err = await _kubectl(kubeconfig, "--context", "cluster2", "apply", "-f", "-",
                                      input=json.dumps(DEPLOYMENT))
        assert code == 0, err
        code, _, err = await _kubectl(kubeconfig, "--context", "cluster2", "rollout", "status", "deployment/hello",
                                      "--timeout=120s")
        assert code == 0, err
        code, out, err = await _kubectl(kubeconfig, "--context", "cluster2", "exec", "deploy/hello", "--",
                                        "/bin/cat", "/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        assert (code, out) == (0, "default"), err
        code, out, _ = await _kubectl(kubeconfig, "--context", "cluster2", "logs", "deploy/hello")
        assert (code, out) == (0, "hello\n")
        proc.send_signal(signal.SIGTERM)
        _, err_b = await proc.communicate()
        assert proc.returncode == 0, err_b.decode()[-2000:]
        assert _runs_of(proc.pid) == []  # (other processes on the host may run kubelets too)
