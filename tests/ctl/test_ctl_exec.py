"""The exec client against a WebSocket server speaking the channel protocol (v5 and v4), over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import pytest_asyncio
from aiohttp import web

from apiserver.ctl._exec import ExecResult, parse_status
from apiserver.ctl._kube import Kube
from tests.ctl.conftest import write_kubeconfig

SEEN = web.AppKey("seen", list)


class FakeSim:
    def __init__(self, url: str) -> None:
        self.url = url


async def handler(request: web.Request) -> web.WebSocketResponse:
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    ws = web.WebSocketResponse(protocols=[p for p in ("v5.channel.k8s.io", "v4.channel.k8s.io")
                                          if p in protocols][:1])
    await ws.prepare(request)
    request.app[SEEN].append((request.match_info["pod"], request.query.getall("command"),
                                request.query.get("container"), ws.ws_protocol,
                                request.headers.get("Authorization")))
    argv = request.query.getall("command")
    if argv[0] == "echo":
        await ws.send_bytes(b"\x01" + " ".join(argv[1:]).encode())
        await ws.send_bytes(b"\x02warn")
        await ws.send_bytes(b'\x03{"metadata":{},"status":"Success"}')
    elif argv[0] == "fail":
        await ws.send_bytes(b'\x03' + orjson.dumps({"status": "Failure", "reason": "NonZeroExitCode",
                                                    "details": {"causes": [{"reason": "ExitCode", "message": "7"}]}}))
    else:
        await ws.send_bytes(b'\x03' + orjson.dumps({"status": "Failure", "message": f'exec: "{argv[0]}": '
                                                    "executable file not found in $PATH"}))
    await ws.close()
    return ws


@pytest_asyncio.fixture
async def exec_server(tmp_path: Path) -> AsyncIterator[tuple[Path, list[object]]]:
    app = web.Application()
    app[SEEN] = []
    app.router.add_get("/api/v1/namespaces/{ns}/pods/{pod}/exec", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield write_kubeconfig(tmp_path / "kc", {"c1": FakeSim(f"http://127.0.0.1:{port}")}), app[SEEN]  # type: ignore[dict-item]
    finally:
        await runner.cleanup()


async def test_exec_collects_stdout_stderr_and_exit_code(exec_server: tuple[Path, list[object]]) -> None:
    kubeconfig, seen = exec_server
    kube = await Kube.connect(str(kubeconfig), "c1")
    try:
        ok = await kube.exec("kube-system", "cilium-0", "cilium-agent", ["echo", "a", "b"])
        failed = await kube.exec("kube-system", "cilium-0", "cilium-agent", ["fail"])
        missing = await kube.exec("kube-system", "cilium-0", "cilium-agent", ["cilium-dbg"])
    finally:
        await kube.close()
    assert (bytes(ok.stdout), bytes(ok.stderr), ok.exit_code) == (b"a b", b"warn", 0)
    assert (failed.exit_code, failed.error) == (7, "")
    assert missing.exit_code == 1 and "executable file not found" in missing.error
    assert seen[0] == ("cilium-0", ["echo", "a", "b"], "cilium-agent", "v5.channel.k8s.io", "Bearer kubesim")


@pytest.mark.parametrize(("message", "expected"), [
    pytest.param([b"\x01{", b"\x01}", b'\x03{"status":"Success"}'], (b"{}", 0), id="split-stdout"),
    pytest.param([b"\x02oops", b'\x03{"status":"Failure","message":"boom"}'], (b"", 1), id="failure-without-code"),
    pytest.param([b"", b"\x04resize", b'\x03{"status":"Success"}'], (b"", 0), id="ignored-channels"),
])
def test_channel_decoding(message: list[bytes], expected: tuple[bytes, int]) -> None:
    result = ExecResult()
    for m in message:
        result.feed(m)
    assert (bytes(result.stdout), result.exit_code) == expected
    assert result.finished


def test_status_without_json() -> None:
    assert parse_status(b"not json") == (1, "not json")
