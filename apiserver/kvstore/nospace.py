"""etcd out of space: its NOSPACE alarm, read from the status poll (``store_reset``).

When its backend reaches ``--quota-backend-bytes`` etcd raises the NOSPACE alarm and refuses
every put (``mvcc: database space exceeded``; deletes and reads still work) until an operator
frees space (compact, defragment) and disarms the alarm (``etcdctl alarm disarm``); a write
refused after the disarm while still over quota raises it again. ``Status.errors`` lists the
active alarms (``memberID:<id> alarm:NOSPACE``).

``SpaceAlarm.observe`` says it once per episode: an error line when the alarm appears, an info
line when it is gone, ``kvstore_nospace_alarm`` meanwhile; the owner is not ready while
``active``, and ``on_cleared`` is called when the alarm is gone, to retry at once every write etcd
refused (the writers themselves count refused keys and log them only at debug level).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from apiserver._logging import get_logger
from apiserver.kvstore._backend import Status
from apiserver.metrics import Metrics

__all__ = ["NOSPACE_ALARM", "SpaceAlarm"]

log = get_logger(__name__)

NOSPACE_ALARM = "alarm:NOSPACE"


class SpaceAlarm:
    """See the module docstring."""

    def __init__(self, on_cleared: Callable[[], None] | None = None, *, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._on_cleared = on_cleared
        self._gauge = metrics.kvstore_nospace_alarm if metrics is not None else None
        self._clock = clock
        self.active = False
        self.episodes = 0
        self._since = 0.0

    def observe(self, status: Status) -> None:
        raised = [e.strip() for e in status.errors if NOSPACE_ALARM in e]
        if raised and not self.active:
            self.active = True
            self.episodes += 1
            self._since = self._clock()
            log.error("etcd is out of space (NOSPACE alarm): it refuses every write until an operator "
                      "compacts, defragments and disarms the alarm; not ready meanwhile, refused writes "
                      "are retried", alarms=raised, db_size=status.db_size)
        elif not raised and self.active:
            self.active = False
            log.info("etcd NOSPACE alarm cleared; retrying every refused write",
                     seconds=round(self._clock() - self._since, 1), db_size=status.db_size)
            if self._on_cleared is not None:
                self._on_cleared()
        if self._gauge is not None:
            self._gauge.set(1 if self.active else 0)
