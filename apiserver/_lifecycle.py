"""``async with`` for objects with ``start()`` / ``stop()`` coroutines: entering starts, leaving stops."""

from __future__ import annotations

from typing import Self


class StartStop:
    """Base of a class with ``async def start(self) -> None`` and ``async def stop(self) -> None``."""

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
