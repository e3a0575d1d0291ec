"""The fault proxy against a loopback echo server: forwarding, latency per direction, blackhole
(accepted but nothing forwarded, then healed with nothing lost; all, or the connections whose
first bytes match), reset and refuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from localmesh.testing.polling import eventually
from localmesh.testing.tcpproxy import TcpProxy


@pytest.fixture
async def proxy() -> AsyncIterator[TcpProxy]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    async with TcpProxy(server.sockets[0].getsockname()[1]) as p:
        yield p
    server.close()
    await server.wait_closed()


async def _roundtrip(proxy: TcpProxy, payload: bytes) -> tuple[float, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(payload)
        data = await reader.readexactly(len(payload))
        return loop.time() - started, data
    finally:
        writer.close()


async def test_forwards_and_delays_each_direction(proxy: TcpProxy) -> None:
    assert await _roundtrip(proxy, b"hello") == (pytest.approx(0, abs=0.5), b"hello")
    proxy.latency(up=0.2, down=0.1)
    elapsed, data = await _roundtrip(proxy, b"slow")
    assert data == b"slow" and elapsed >= 0.3
    proxy.heal()
    assert proxy.delay == {"up": 0.0, "down": 0.0}


async def test_blackhole_accepts_but_forwards_nothing_until_healed(proxy: TcpProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"before")
    assert await reader.readexactly(6) == b"before"
    proxy.blackhole()
    writer.write(b"during")
    late, late_writer = await asyncio.open_connection("127.0.0.1", proxy.port)  # accepted
    late_writer.write(b"new")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await reader.readexactly(6)
    proxy.heal()
    assert await reader.readexactly(6) == b"during"
    assert await late.readexactly(3) == b"new"
    writer.close()
    late_writer.close()


async def test_blackhole_matching_holds_only_the_connections_that_name_it(proxy: TcpProxy) -> None:
    named_reader, named = await asyncio.open_connection("127.0.0.1", proxy.port)
    named.write(b"GET /stream HTTP/1.1\r\nFrom: m1\r\n\r\n")  # named before the partition
    await named_reader.readuntil(b"\r\n\r\n")
    held_reader, held = await asyncio.open_connection("127.0.0.1", proxy.port)
    free_reader, free = await asyncio.open_connection("127.0.0.1", proxy.port)
    proxy.blackhole(matching=b"From: m1")
    named.write(b"more")
    held.write(b"GET / HTTP/1.1\r\nFrom: m1\r\n\r\n")
    free.write(b"GET / HTTP/1.1\r\nFrom: m2\r\n\r\n")
    assert (await free_reader.readuntil(b"\r\n\r\n")).endswith(b"m2\r\n\r\n")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await held_reader.readuntil(b"\r\n\r\n")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await named_reader.readexactly(4)
    proxy.heal()
    assert (await held_reader.readuntil(b"\r\n\r\n")).endswith(b"m1\r\n\r\n")
    assert await named_reader.readexactly(4) == b"more"
    named.close()
    held.close()
    free.close()


async def test_reset_aborts_established_and_refuse_closes_new(proxy: TcpProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"x")
    assert await reader.readexactly(1) == b"x"
    assert proxy.connections == 1
    proxy.reset()
    assert proxy.connections == 0
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await reader.readexactly(1)
    writer.close()
    proxy.refuse()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await reader.readexactly(1)
    writer.close()
    proxy.heal()
    await eventually(lambda: proxy.connections == 0, what="refused connection gone")
    assert (await _roundtrip(proxy, b"back"))[1] == b"back"
