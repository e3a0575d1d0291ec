"""Container probes as kubelet runs them (``pkg/kubelet/prober``): httpGet, tcpSocket and exec, with
initialDelaySeconds, periodSeconds, timeoutSeconds, successThreshold and failureThreshold.

A probe's result flips only after ``successThreshold`` consecutive successes or ``failureThreshold``
consecutive failures. Readiness starts as failure, liveness and startup as success (kubelet's initial
values). grpc probes are not supported (they count as a failure, with a log line).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from apiserver._logging import get_logger

log = get_logger(__name__)

Obj = dict[str, Any]
Exec = Callable[[Sequence[str], float], Awaitable[int]]  # argv, timeout -> exit code


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    handler: Obj
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def parse(cls, probe: Obj) -> ProbeSpec:
        """The API server's defaults apply to fields left unset."""
        return cls(handler=probe, initial_delay=float(probe.get("initialDelaySeconds") or 0),
                   period=float(probe.get("periodSeconds") or 10), timeout=float(probe.get("timeoutSeconds") or 1),
                   success_threshold=int(probe.get("successThreshold") or 1),
                   failure_threshold=int(probe.get("failureThreshold") or 3))


def resolve_port(port: Any, container: Obj) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or (isinstance(port, str) and port.isdigit()):
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"probe port {port!r}: no container port of that name")


async def check_once(spec: ProbeSpec, container: Obj, pod_ip: str, run_exec: Exec) -> bool:
    handler = spec.handler
    try:
        async with asyncio.timeout(spec.timeout):
            if "httpGet" in handler:
                get = handler["httpGet"]
                scheme = str(get.get("scheme") or "HTTP").lower()
                host = get.get("host") or pod_ip
                url = f"{scheme}://{host}:{resolve_port(get.get('port'), container)}{get.get('path') or '/'}"
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders") or []}
                headers.setdefault("User-Agent", "kube-probe/1.33")
                async with aiohttp.ClientSession() as session, session.get(
                        url, headers=headers, ssl=False, allow_redirects=False) as resp:
                    return 200 <= resp.status < 400
            if "tcpSocket" in handler:
                tcp = handler["tcpSocket"]
                _, writer = await asyncio.open_connection(tcp.get("host") or pod_ip,
                                                          resolve_port(tcp.get("port"), container))
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return True
            if "exec" in handler:
                return await run_exec([str(a) for a in handler["exec"].get("command") or []], spec.timeout) == 0
    except (TimeoutError, OSError, aiohttp.ClientError, ValueError):
        return False
    log.warning("Unsupported probe handler (failing)", handler=",".join(sorted(handler)))
    return False


async def run_probe(spec: ProbeSpec, check: Callable[[], Awaitable[bool]], on_result: Callable[[bool], None],
                    *, initial: bool, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Probe forever (until cancelled), reporting each flip of the result (and the first one)."""
    result = initial
    successes = failures = 0
    await sleep(spec.initial_delay)
    reported = False
    while True:
        if await check():
            successes, failures = successes + 1, 0
            if successes >= spec.success_threshold and (not result or not reported):
                result, reported = True, True
                on_result(True)
        else:
            successes, failures = 0, failures + 1
            if failures >= spec.failure_threshold and (result or not reported):
                result, reported = False, True
                on_result(False)
        await sleep(spec.period)
