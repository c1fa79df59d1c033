"""A prefix watch that survives member death, reconnection and compaction.

`follow` first reads the whole prefix (a Snapshot at revision R), then watches from R+1. When the
connection is lost it watches again from the last revision it delivered + 1 (the backend moves to
another endpoint); when that revision has been compacted away, or the backend found the stream
stale (silent while changes happened), it reads the whole prefix again and delivers a fresh
Snapshot. Consumers apply both to a `Mirror` and never miss or repeat a change.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from hakeeper.coord.store import Compacted, Event, StaleWatch, Store, StoreError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    values: dict[str, bytes]
    revision: int


@dataclass(frozen=True)
class Changes:
    events: list[Event]
    revision: int


Update = Snapshot | Changes


async def follow(store: Store, prefix: str, retry_delay: float = 0.2) -> AsyncIterator[Update]:
    revision: int | None = None
    while True:
        try:
            if revision is None:
                kvs, revision = await store.get_prefix(prefix)
                yield Snapshot({kv.key: kv.value for kv in kvs}, revision)
            async for batch in store.watch_prefix(prefix, revision + 1):
                revision = batch[-1].revision
                yield Changes(batch, revision)
        except (Compacted, StaleWatch) as exc:
            log.warning("watch %s: %s, resynchronising", prefix, exc)
            revision = None
        except StoreError as exc:  # unavailable, or any other answer than events: retry, never end
            log.warning(
                "watch %s: %s, resuming from revision %s",
                prefix,
                exc,
                None if revision is None else revision + 1,
            )
            await asyncio.sleep(retry_delay)


class Mirror:
    """The current values under a prefix, kept up to date from `follow` updates."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.revision = 0

    def apply(self, update: Update) -> None:
        if isinstance(update, Snapshot):
            self.values = dict(update.values)
        else:
            for e in update.events:
                if e.kind == "put":
                    self.values[e.key] = e.value
                else:
                    self.values.pop(e.key, None)
        self.revision = update.revision
