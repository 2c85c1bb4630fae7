"""Event delivery of one cluster: the kept history, watch queues and the subscribers' queue.

Watches get every event at once (their own queue each, replayable by resourceVersion);
subscribers (the lab's asynchronous controllers) get them in order from one dispatcher task,
so a slow subscriber delays the next event, never an API call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Final

from provisioning.lab.apiserver.errors import ApiError, bad_request
from provisioning.lab.apiserver.model import Event

log = logging.getLogger("netconform.lab.apiserver")

Subscriber = Callable[[str, Event], Awaitable[None]]
HISTORY_LIMIT: Final = 20000


class EventStream:
    """History, watchers and subscribers of one cluster's events."""

    def __init__(self, cluster: str, subscribers: list[Subscriber]) -> None:
        self.cluster = cluster
        self.subscribers = subscribers
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._history: deque[Event] = deque(maxlen=HISTORY_LIMIT)
        self._watchers: set[asyncio.Queue[Event | None]] = set()
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def watch_count(self) -> int:
        return len(self._watchers)

    def publish(self, event: Event, own_copy: Event) -> None:
        """Record `event` for watches; queue `own_copy` for the subscribers."""
        self._history.append(event)
        for watcher in self._watchers:
            watcher.put_nowait(event)
        self._queue.put_nowait(own_copy)

    async def wait_idle(self) -> None:
        """Wait until every event so far was delivered (not from inside a subscriber)."""
        await self._queue.join()

    def start(self) -> None:
        """Start delivering events to subscribers (in the running loop)."""
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch())

    async def stop(self) -> None:
        """Stop delivering events and end all watches."""
        for watcher in self._watchers:
            watcher.put_nowait(None)
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
            self._dispatcher = None

    async def _dispatch(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                for subscriber in list(self.subscribers):
                    await self._deliver(subscriber, event)
            finally:
                self._queue.task_done()

    async def _deliver(self, subscriber: Subscriber, event: Event) -> None:
        try:
            await subscriber(self.cluster, event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: subscriber failed on %s %s", self.cluster, event.type, event.kind)

    def open_watch(
        self, kind: str, since: str, current: Iterable[Event]
    ) -> asyncio.Queue[Event | None]:
        """A queue of events of `kind` after resourceVersion `since` ("" or "0": `current`,
        the objects as ADDED, first); 410 Gone when `since` is older than the kept history."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        if since in ("", "0"):
            for event in current:
                queue.put_nowait(event)
        else:
            self._replay(queue, kind, since)
        self._watchers.add(queue)
        return queue

    def _replay(self, queue: asyncio.Queue[Event | None], kind: str, since: str) -> None:
        try:
            after = int(since)
        except ValueError as exc:
            raise bad_request(f"invalid resourceVersion {since!r}") from exc
        oldest = int(self._history[0].obj["metadata"]["resourceVersion"]) if self._history else 0
        if after < oldest - 1 and len(self._history) == HISTORY_LIMIT:
            raise ApiError(410, "Expired", f"too old resource version: {after} ({oldest})")
        for event in self._history:
            if event.kind == kind and int(event.obj["metadata"]["resourceVersion"]) > after:
                queue.put_nowait(event)

    def close_watch(self, queue: asyncio.Queue[Event | None]) -> None:
        """Forget a watch queue."""
        self._watchers.discard(queue)
