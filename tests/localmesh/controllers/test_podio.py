"""``kubectl logs`` and ``kubectl exec`` against the emulator, with a node runtime that runs containers and
exec'd commands as plain host processes (a test double of the kubelet: no namespaces)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from localmesh.kubesim import KubeSim
from localmesh.kubesim._node import ContainerNotFoundError
from tests.localmesh.controllers.conftest import Kubectl, eventually


class HostRuntime:
    """Each container is a host process whose combined output goes to ``<root>/<ns>_<pod>_<c>/<n>.log``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.instances: dict[tuple[str, str, str], list[asyncio.subprocess.Process]] = {}

    def _dir(self, key: tuple[str, str, str]) -> Path:
        return self.root / "_".join(key)

    async def start(self, namespace: str, pod: str, container: str, script: str) -> None:
        key = (namespace, pod, container)
        runs = self.instances.setdefault(key, [])
        self._dir(key).mkdir(parents=True, exist_ok=True)
        with (self._dir(key) / f"{len(runs)}.log").open("wb") as out:
            proc = await asyncio.create_subprocess_exec("sh", "-c", script, stdout=out, stderr=out,
                                                        cwd=self._dir(key))
        runs.append(proc)

    def log_file(self, namespace: str, pod: str, container: str, *, previous: bool = False) -> Path:
        runs = self.instances.get((namespace, pod, container))
        if not runs:
            raise ContainerNotFoundError(f'container "{container}" in pod "{pod}" is waiting to start: '
                                         f'ContainerCreating')
        index = len(runs) - (2 if previous else 1)
        if index < 0:
            raise ContainerNotFoundError(f'previous terminated container "{container}" in pod "{pod}" not found')
        return self._dir((namespace, pod, container)) / f"{index}.log"

    def is_running(self, namespace: str, pod: str, container: str) -> bool:
        runs = self.instances.get((namespace, pod, container))
        return bool(runs) and runs[-1].returncode is None

    async def exec(self, namespace: str, pod: str, container: str, argv: Sequence[str], *,
                   stdin: bool, tty: bool) -> asyncio.subprocess.Process:
        if not self.is_running(namespace, pod, container):
            raise ContainerNotFoundError(f'container "{container}" in pod "{pod}" is not running')
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    async def stop(self) -> None:
        for runs in self.instances.values():
            for proc in runs:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()


POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
       "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "x:1"}, {"name": "side", "image": "x:1"}]},
       "status": {"phase": "Running"}}
FOREVER = "while :; do sleep 0.05; done"


@pytest_asyncio.fixture
async def runtime(kubesim: KubeSim, tmp_path: Path) -> AsyncIterator[HostRuntime]:
    host = HostRuntime(tmp_path / "node")
    kubesim.node_runtime = host
    kubesim.apply(POD)
    try:
        yield host
    finally:
        kubesim.node_runtime = None
        await host.stop()


async def test_logs_container_tail_previous(kubesim: KubeSim, runtime: HostRuntime, kubectl: Kubectl) -> None:
    await runtime.start("default", "web", "main", "printf 'one\\ntwo\\nthree\\n'")
    await runtime.start("default", "web", "side", f"echo side; echo oops >&2; {FOREVER}")
    await eventually(lambda: not runtime.is_running("default", "web", "main"))
    logs = await kubectl("logs", "web", "-c", "main")
    assert (logs.code, logs.out) == (0, "one\ntwo\nthree\n"), logs.err
    tail = await kubectl("logs", "web", "-c", "main", "--tail=2")
    assert tail.out == "two\nthree\n"
    limited = await kubectl("logs", "web", "-c", "main", "--limit-bytes=5")
    assert limited.out == "one\nt"
    await eventually(lambda: (runtime.root / "default_web_side" / "0.log").read_text() == "side\noops\n")
    side = await kubectl("logs", "web", "-c", "side")
    assert side.out == "side\noops\n"
    none_yet = await kubectl("logs", "web", "-c", "main", "--previous")
    assert none_yet.code == 1
    assert 'Error from server (BadRequest): previous terminated container "main" in pod "web" not found' in \
        none_yet.err
    await runtime.start("default", "web", "main", "echo again")  # a restart
    await eventually(lambda: not runtime.is_running("default", "web", "main"))
    previous = await kubectl("logs", "web", "-c", "main", "-p")
    assert previous.out == "one\ntwo\nthree\n"
    assert (await kubectl("logs", "web", "-c", "main")).out == "again\n"
    # kubectl picks the first container when none is named, and says so.
    default = await kubectl("logs", "web")
    assert default.out == "again\n" and 'Defaulted container "main" out of: main, side' in default.err


async def test_logs_follow_until_the_container_stops(kubesim: KubeSim, runtime: HostRuntime,
                                                     kubectl: Kubectl, tmp_path: Path) -> None:
    await runtime.start("default", "web", "main", "echo first; while [ ! -e go ]; do sleep 0.02; done; echo second")
    await eventually(lambda: (runtime.root / "default_web_main" / "0.log").read_text() == "first\n")
    following = asyncio.create_task(kubectl("logs", "-f", "web", "-c", "main"))
    await eventually(lambda: kubesim.request_counts["log", "pods"] == 1)
    (runtime.root / "default_web_main" / "go").touch()
    done = await following
    assert (done.code, done.out) == (0, "first\nsecond\n"), done.err


async def test_exec_streams_and_exit_code(kubesim: KubeSim, runtime: HostRuntime, kubectl: Kubectl) -> None:
    await runtime.start("default", "web", "main", FOREVER)
    ok = await kubectl("exec", "web", "-c", "main", "--", "sh", "-c", "echo out; echo err >&2")
    assert (ok.code, ok.out, ok.err) == (0, "out\n", "err\n")
    failed = await kubectl("exec", "web", "-c", "main", "--", "sh", "-c", "echo partial; exit 3")
    assert failed.code == 3 and failed.out == "partial\n"
    assert "command terminated with exit code 3" in failed.err
    piped = await kubectl("exec", "-i", "web", "-c", "main", "--", "sh", "-c", "tr a-z A-Z; echo done",
                          stdin=b"hello from stdin\n")
    assert (piped.code, piped.out) == (0, "HELLO FROM STDIN\ndone\n"), piped.err
    missing = await kubectl("exec", "web", "-c", "main", "--", "/nonexistent/tool")
    assert missing.code != 0 and "/nonexistent/tool" in missing.err
    stopped = await kubectl("exec", "web", "-c", "side", "--", "true")
    # The WebSocket is refused, kubectl falls back to SPDY and shows that answer.
    assert stopped.code == 1
    assert 'error: unable to upgrade connection: container not found ("side")' in stopped.err


async def _ws_exec(sim: KubeSim, protocol: str, query: str, send: list[bytes]) -> tuple[str, list[bytes]]:
    url = f"{sim.url}/api/v1/namespaces/default/pods/web/exec?{query}"
    frames: list[bytes] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url, protocols=(protocol,)) as ws:
        for data in send:
            await ws.send_bytes(data)
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.BINARY
            frames.append(msg.data)
        return str(ws.protocol), frames


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v5.channel.k8s.io"])
async def test_exec_channels(kubesim: KubeSim, runtime: HostRuntime, protocol: str) -> None:
    await runtime.start("default", "web", "main", FOREVER)
    query = ("container=main&stdout=true&stderr=true&command=sh&command=-c&command="
             "echo%20out%3B%20echo%20err%20%3E%262%3B%20exit%207")
    chosen, frames = await _ws_exec(kubesim, protocol, query, [])
    assert chosen == protocol
    by_channel: dict[int, bytes] = {}
    for frame in frames:
        by_channel[frame[0]] = by_channel.get(frame[0], b"") + frame[1:]
    assert by_channel[1] == b"out\n" and by_channel[2] == b"err\n"
    assert frames[-1][0] == 3
    assert json.loads(by_channel[3]) == {
        "metadata": {}, "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command [sh -c echo out; echo err "
                   ">&2; exit 7], exit code 7",
        "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": "7"}]}}


async def test_exec_v5_close_ends_stdin(kubesim: KubeSim, runtime: HostRuntime) -> None:
    await runtime.start("default", "web", "main", FOREVER)
    _, frames = await _ws_exec(kubesim, "v5.channel.k8s.io", "container=main&stdin=true&stdout=true&command=cat",
                               [b"\x00abc", b"\x00def", b"\xff\x00"])
    assert b"".join(f[1:] for f in frames if f[0] == 1) == b"abcdef"
    assert json.loads(frames[-1][1:]) == {"metadata": {}, "status": "Success"}


async def test_no_runtime_is_an_unreachable_kubelet(kubesim: KubeSim, kubectl: Kubectl) -> None:
    kubesim.apply(POD)
    logs = await kubectl("logs", "web", "-c", "main")
    assert logs.code == 1
    assert ('Error from server: Get "https://n1:10250/containerLogs/default/web/main": dial tcp n1:10250: '
            'connect: connection refused') in logs.err
    exec_ = await kubectl("exec", "web", "-c", "main", "--", "true")
    assert exec_.code == 1
    assert "error dialing backend: dial tcp n1:10250: connect: connection refused" in exec_.err


async def test_request_errors(kubesim: KubeSim, runtime: HostRuntime, kubectl: Kubectl) -> None:
    wrong = await kubectl("logs", "web", "-c", "nope")
    assert wrong.code == 1 and "container nope is not valid for pod web" in wrong.err
    absent = await kubectl("logs", "ghost")
    assert absent.code == 1 and 'pods "ghost" not found' in absent.err
    waiting = await kubectl("logs", "web", "-c", "main")
    assert 'container "main" in pod "web" is waiting to start: ContainerCreating' in waiting.err
    kubesim.apply({**POD, "metadata": {"name": "pending", "namespace": "default"},
                   "spec": {"containers": [{"name": "main", "image": "x:1"}]}, "status": {"phase": "Pending"}})
    unscheduled = await kubectl("exec", "pending", "--", "true")
    assert unscheduled.code == 1 and "pod pending does not have a host assigned" in unscheduled.err
