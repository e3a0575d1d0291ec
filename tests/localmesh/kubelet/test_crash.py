"""The runtime as its own process: killed with SIGKILL, it leaves nothing running, and the next start
sweeps the links, routes, forwarding reference and state it recorded. Without root: a clear error."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import orjson
import pytest

from apiserver.kube import KubeOptions, build_client
from localmesh.kubelet import Kubelet, KubeletConfig, NotRootError
from localmesh.kubelet._sys import require_root
from localmesh.kubesim import KubeSim, ServerTLS
from tests.localmesh.kubelet.conftest import NODE, eventually, exists, needs_root, pod_manifest, read_text, shell


def _ready(sim: KubeSim, name: str) -> bool:
    pod = sim.get("v1", "Pod", name, "default") or {}
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _runs(root: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    out = {}
    for d in root.iterdir() if root.is_dir() else []:
        if (d / "state.json").is_file():
            out[d.name] = orjson.loads((d / "state.json").read_bytes())
    return out


@needs_root
async def test_sigkill_of_the_runtime_leaves_nothing_after_the_next_start(tmp_path: Path) -> None:
    root = tmp_path / "state"
    tls = ServerTLS.self_signed(tmp_path / "tls")
    sim = KubeSim()
    await sim.start(tls=tls)
    kubeconfig = sim.write_kubeconfig(tmp_path / "kubeconfig")
    sim.apply(pod_manifest("victim", [shell("main", "exec sleep 3600")]))
    forwarding_before = read_text("/proc/sys/net/ipv4/ip_forward")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "localmesh.kubelet", "--kubeconfig", str(kubeconfig), "--node-name", NODE,
        "--state-root", str(root), stderr=asyncio.subprocess.DEVNULL)
    try:
        await eventually(lambda: _ready(sim, "victim"))
        (run_id, state), = _runs(root).items()
        assert state["owner"]["pid"] == proc.pid
        pids = [p["pid"] for p in state["processes"]]
        links = state["links"]
        assert len(pids) >= 2 and len(links) == 2  # sandbox + container; bridge + veth
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # its processes die with it (PR_SET_PDEATHSIG); the bridge and the record stay until the next start
    await eventually(lambda: not any(exists(f"/proc/{pid}") for pid in pids))
    assert exists(f"/sys/class/net/{links[0]}")
    client = await build_client(KubeOptions(kubeconfig_path=str(kubeconfig)))
    kubelet = Kubelet(client.api_client, KubeletConfig(node_name="other-node", state_root=root,
                                                       api_ca_pem=tls.ca_pem() or b""))
    try:
        await kubelet.start()
        for link in links:
            assert not exists(f"/sys/class/net/{link}"), link
        assert run_id not in _runs(root)
        await kubelet.stop()
        assert _runs(root) == {}
        assert not any(exists(f"/sys/class/net/{link}") for link in (kubelet.network.bridge,))
        assert read_text("/proc/sys/net/ipv4/ip_forward") == forwarding_before
    finally:
        await kubelet.stop()
        await client.close()
        await sim.stop()


def test_not_root_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(NotRootError, match=r"needs root .* not uid 1000"):
        require_root()


def test_the_command_refuses_to_run_without_root(tmp_path: Path) -> None:
    script = ("import os, sys; os.geteuid = lambda: 1000\n"
              "from localmesh.kubelet.__main__ import main\n"
              f"sys.exit(main(['--kubeconfig', {json.dumps(str(tmp_path / 'kc'))}]))\n")
    import subprocess
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "needs root" in result.stderr + result.stdout
