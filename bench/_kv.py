"""etcd chores of the benchmark: connect, dump a prefix, check it against the expected keys, wipe."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

from apiserver.kvstore.etcd import EtcdClient, EtcdConfig
from localmesh.testing.etcd import EtcdServer

_PAGE = 20_000


class IncorrectResult(AssertionError):
    """A benchmark's output in etcd is incomplete or wrong: its figure must not be reported."""


@dataclass
class Diff:
    missing: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.wrong or self.extra)

    def describe(self) -> str:
        parts = []
        for name, keys in (("missing", self.missing), ("wrong value", self.wrong), ("unexpected", self.extra)):
            if keys:
                parts.append(f"{len(keys)} {name} (e.g. {sorted(keys)[:3]})")
        return "; ".join(parts) or "ok"


def compare(actual: Mapping[str, bytes], expected: Mapping[str, bytes]) -> Diff:
    diff = Diff()
    for key, value in expected.items():
        got = actual.get(key)
        if got is None:
            diff.missing.append(key)
        elif got != value:
            diff.wrong.append(key)
    diff.extra = [key for key in actual if key not in expected]
    return diff


async def connect(endpoint: str) -> EtcdClient:
    return await EtcdClient.connect(EtcdConfig(endpoints=(endpoint,), request_timeout=60.0))


async def dump(client: EtcdClient, prefix: str) -> dict[str, bytes]:
    kvs, _ = await client.list_prefix(prefix, page_size=_PAGE)
    return {kv.key: kv.value for kv in kvs}


async def verify(client: EtcdClient, prefix: str, expected: Mapping[str, bytes], what: str) -> None:
    """Every expected key under ``prefix`` with the right bytes, and nothing else there."""
    diff = compare(await dump(client, prefix), expected)
    if not diff.ok:
        raise IncorrectResult(f"{what}: {diff.describe()}")


async def wait_verified(client: EtcdClient, prefix: str, expected: Mapping[str, bytes], what: str,
                        timeout: float) -> None:
    """``verify``, polling until it holds or ``timeout`` passes (writes may still be in flight)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await verify(client, prefix, expected, what)
            return
        except IncorrectResult:
            if loop.time() > deadline:
                raise
        await asyncio.sleep(0.5)


async def wipe(server: EtcdServer, client: EtcdClient) -> None:
    """Delete every key, compact and defragment: the next writer starts from an empty database."""
    await client.delete_prefix("")
    revision = (await client.status()).revision
    await client.compact(revision, physical=True)
    await server.etcdctl_async("defrag", time_limit=60.0)
