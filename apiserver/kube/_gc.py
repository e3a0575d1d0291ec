"""Pause the cyclic garbage collector around bulk JSON decoding.

Decoding a list page allocates thousands of dicts and lists at once; each allocation burst
triggers collections that scan the whole (large, long-lived) cache for cycles and find none.
Measured on 100k CiliumEndpoints: 1.0 s of decoding with the collector on, 0.16 s with it paused.
The pause covers synchronous code only (no ``await`` inside), which creates no cycles. Small watch
batches gain nothing from it (the deferred collections run right after), so only list pages use it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    if not gc.isenabled():  # someone else paused it: leave it to them
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
