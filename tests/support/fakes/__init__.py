"""In-memory units of work for handler unit tests: the same ports, no database.

A fake unit of work keeps its state in plain containers; ``write()`` snapshots the state
and restores it when the block raises (a rollback), and the outbox keeps only the events
of committed transactions — what a handler's caller could observe of the real one.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

from google.protobuf.message import Message

from services.platform.outbox import Envelope, envelope

S = TypeVar("S")
T = TypeVar("T")


class FakeOutbox:
    """Events recorded in the current transaction, then (on commit) in ``published``."""

    def __init__(self) -> None:
        self.pending: list[Envelope] = []
        self.committed: list[Envelope] = []

    async def record(self, event: Message, aggregate_id: str) -> Envelope:
        item = envelope(event, aggregate_id)
        self.pending.append(item)
        return item

    async def record_many(self, events: Sequence[tuple[Message, str]]) -> list[Envelope]:
        return [await self.record(event, aggregate_id) for event, aggregate_id in events]

    async def withdraw(self, recorded: Envelope) -> None:
        self.pending.remove(recorded)

    def event_types(self) -> list[str]:
        return [item.event_type.rsplit(".", 1)[-1] for item in self.committed]


class FakeRepository(Generic[S]):
    """The base of the fake repositories: plain containers in ``self._state``, shared by
    every repository of the unit of work."""

    def __init__(self, state: S) -> None:
        self._state = state


class FakeTx:
    """One fake transaction: the unit of work's outbox, and the repositories a subclass
    adds (on the same state) in its ``__init__``."""

    def __init__(self, outbox: FakeOutbox) -> None:
        self.outbox = outbox


class FakeUnitOfWork(Generic[S, T]):
    """``state`` (copied per write) seen through ``view(state, outbox)`` as repositories."""

    def __init__(self, state: S, view: Callable[[S, FakeOutbox], T]) -> None:
        self.state = state
        self.outbox = FakeOutbox()
        self._view = view
        self.writes = 0
        self.reads = 0

    @asynccontextmanager
    async def write(self) -> AsyncIterator[T]:
        snapshot = copy.deepcopy(self.state)
        self.outbox.pending = []
        try:
            yield self._view(self.state, self.outbox)
        except BaseException:
            self.state = snapshot
            self.outbox.pending = []
            raise
        self.writes += 1
        self.outbox.committed.extend(self.outbox.pending)
        self.outbox.pending = []

    @asynccontextmanager
    async def read(self) -> AsyncIterator[T]:
        self.reads += 1
        yield self._view(self.state, _ReadOnlyOutbox())

    def write_one(self) -> AbstractAsyncContextManager[T]:
        return self.write()


class _ReadOnlyOutbox(FakeOutbox):
    async def record(self, event: Message, aggregate_id: str) -> Envelope:
        raise AssertionError("a read transaction recorded an event")
