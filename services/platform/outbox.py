"""The transactional outbox: events are rows written in the same transaction as the
state change they describe; a relay publishes them to the bus afterwards.

Every publishing service creates the ``outbox`` table with :func:`create_outbox_table`
in a migration and records events through :class:`SqlOutbox` (in the transaction of its
unit of work).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from google.protobuf.message import Message
from opentelemetry import propagate

from services.platform.clock import now_us
from services.platform.db import SERIAL_ID, Transaction
from services.platform.ids import time_ordered_id

metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", SERIAL_ID, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    sa.Column("aggregate_id", sa.String(64), nullable=False),
    sa.Column("occurred_at_us", sa.BigInteger, nullable=False),
    sa.Column("traceparent", sa.String(64), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("published_at_us", sa.BigInteger, nullable=True),
    sa.Index("ix_outbox_unpublished", "published_at_us", "id"),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("processed_at_us", sa.BigInteger, nullable=False),
)


def create_outbox_table(op: Any) -> None:
    """For migrations: ``create_outbox_table(op)`` creates the outbox and its index."""
    op.create_table(
        "outbox",
        *(column._copy() for column in outbox.columns),
    )
    op.create_index("ix_outbox_unpublished", "outbox", ["published_at_us", "id"])


def create_inbox_table(op: Any) -> None:
    """For migrations of consuming services: the processed-event ids."""
    op.create_table("inbox", *(column._copy() for column in inbox.columns))


@dataclass(frozen=True, slots=True)
class Envelope:
    """An event on the bus: id, type (full proto name), aggregate, time, trace, payload."""

    event_id: str
    event_type: str
    aggregate_id: str
    occurred_at_us: int
    traceparent: str
    payload: bytes


def current_traceparent() -> str:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def envelope(event: Message, aggregate_id: str, traceparent: str | None = None) -> Envelope:
    """``event`` about ``aggregate_id``, now, in the current trace (or ``traceparent``)."""
    return Envelope(
        event_id=time_ordered_id(),
        event_type=event.DESCRIPTOR.full_name,
        aggregate_id=aggregate_id,
        occurred_at_us=now_us(),
        traceparent=current_traceparent() if traceparent is None else traceparent,
        payload=event.SerializeToString(),
    )


class Outbox(Protocol):
    """The outbox of a unit of work: events committed with the state change."""

    async def record(self, event: Message, aggregate_id: str) -> Envelope:
        """Adds ``event`` about ``aggregate_id``; published once the transaction commits."""

    async def record_many(self, events: Sequence[tuple[Message, str]]) -> list[Envelope]:
        """Adds several ``(event, aggregate_id)`` pairs with one statement."""

    async def withdraw(self, recorded: Envelope) -> None:
        """Takes back an event recorded earlier in this transaction: it is never published
        (for an event recorded ahead of the statement that decides it, see inventory)."""


_INSERT = sa.insert(outbox)
_WITHDRAW = sa.delete(outbox).where(outbox.c.event_id == sa.bindparam("b_event_id"))


def _row(stream: str, item: Envelope) -> dict[str, Any]:
    return {
        "event_id": item.event_id,
        "stream": stream,
        "event_type": item.event_type,
        "aggregate_id": item.aggregate_id,
        "occurred_at_us": item.occurred_at_us,
        "traceparent": item.traceparent,
        "payload": item.payload,
    }


class SqlOutbox:
    """The ``outbox`` table, written in ``tx``; committing it wakes the relay."""

    __slots__ = ("_stream", "_tx")

    def __init__(self, tx: Transaction, stream: str) -> None:
        self._tx = tx
        self._stream = stream

    async def record(self, event: Message, aggregate_id: str) -> Envelope:
        item = envelope(event, aggregate_id)
        self._tx.outbox_written = True
        await self._tx.execute(_INSERT, _row(self._stream, item))
        return item

    async def record_many(self, events: Sequence[tuple[Message, str]]) -> list[Envelope]:
        trace = current_traceparent()  # one transaction, one trace context
        items = [envelope(event, aggregate_id, trace) for event, aggregate_id in events]
        if items:
            self._tx.outbox_written = True
            await self._tx.execute_many(_INSERT, [_row(self._stream, item) for item in items])
        return items

    async def withdraw(self, recorded: Envelope) -> None:
        await self._tx.execute(_WITHDRAW, {"b_event_id": recorded.event_id})
