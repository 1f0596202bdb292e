"""The ``sagas`` table in a transaction (SQLAlchemy Core, built once).

Ownership (docs/saga.md): a saga row names its ``owner`` (an instance id) and the lease's
expiry; ``version`` grows with every write and every change of owner. Saves and the final
transition are compare-and-set on (owner, version, running); leases are renewed in one
statement for all held sagas; :meth:`SqlSagaRows.adopt` claims sagas whose lease expired
or was released.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, and_, bindparam, func, insert, or_, select, update

from services.order import codec
from services.order.domain import Card
from services.order.saga import Outcome, SagaState, Step
from services.order.tables import sagas
from services.platform.db import Row
from services.platform.uow import SqlRepository

RUNNING, ENDED = "running", "ended"

_IDS: BindParameter[str] = bindparam("ids", expanding=True)
_ORDER = sagas.c.order_id == bindparam("b_order_id")
_HELD = and_(
    _ORDER,
    sagas.c.owner == bindparam("b_owner"),
    sagas.c.version == bindparam("b_version"),
    sagas.c.status == RUNNING,
)
_MINE = and_(sagas.c.order_id.in_(_IDS), sagas.c.owner == bindparam("b_owner"))
_FREE = and_(
    sagas.c.status == RUNNING,
    or_(sagas.c.owner.is_(None), sagas.c.lease_expires_us < bindparam("b_now")),
)
_CREATE = insert(sagas)
_LOCK = select(sagas).where(_ORDER).with_for_update()
_HELD_RUNNING = select(sagas).where(
    _ORDER, sagas.c.status == RUNNING, sagas.c.owner == bindparam("b_owner")
)
_UPDATE = update(sagas).where(_ORDER)
_SAVE = update(sagas).where(_HELD).returning(sagas.c.cancel_reason)
_END = update(sagas).where(_HELD).returning(sagas.c.cancel_reason)
_BUMP = {"version": sagas.c.version + 1}
_RENEW = (
    update(sagas)
    .where(_MINE, sagas.c.status == RUNNING)
    .values(lease_expires_us=bindparam("b_expires"))
    .returning(sagas.c.order_id)
)
_CANDIDATES = (
    select(sagas.c.order_id)
    .where(_FREE)
    .order_by(sagas.c.started_at_us)
    .limit(bindparam("b_limit"))
    .with_for_update(skip_locked=True)
)
_CLAIM = (
    update(sagas)
    .where(sagas.c.order_id.in_(_IDS), _FREE)
    .values(owner=bindparam("b_owner"), lease_expires_us=bindparam("b_expires"), **_BUMP)
    .returning(sagas.c.order_id)
)
_RELEASE = (
    update(sagas)
    .where(_MINE, sagas.c.status == RUNNING)
    .values(owner=None, lease_expires_us=None, **_BUMP)
)
_REOPEN = update(sagas).where(_ORDER).values(**_BUMP)
_RUNNING = select(func.count(), func.min(sagas.c.started_at_us)).where(sagas.c.status == RUNNING)


@dataclass(frozen=True, slots=True)
class Held:
    """Who holds a saga row now, and whether it runs."""

    owner: str | None
    version: int
    running: bool
    cancel_reason: str | None


def _progress(state: SagaState) -> dict[str, Any]:
    """The columns a save writes: the saga's own fields."""
    return {
        "step": state.step.value,
        "attempts": state.attempts,
        "retry_deadline_us": state.retry_deadline_us,
        "payment_id": state.payment_id,
        "authorized": state.authorized,
        "captured": state.captured,
        "outcome": None if state.outcome is None else state.outcome.value,
        "reason": state.reason,
        "compensate_from": None if state.compensate_from is None else state.compensate_from.value,
    }


def _started(step: Step, now_us: int, owner: str, expires_us: int) -> dict[str, Any]:
    """The columns of a saga that (re)starts running now at ``step``, held by ``owner``."""
    return {
        "step": step.value,
        "status": RUNNING,
        "attempts": 0,
        "retry_deadline_us": None,
        "started_at_us": now_us,
        "updated_at_us": now_us,
        "owner": owner,
        "lease_expires_us": expires_us,
    }


def _held_write(state: SagaState, owner: str, now_us: int) -> dict[str, Any]:
    """The parameters of a compare-and-set write (``_HELD``) of ``state``: its own fields
    at the next version, if ``owner`` still holds ``state.version``."""
    return {
        **_progress(state),
        "updated_at_us": now_us,
        "version": state.version + 1,
        "b_order_id": state.order_id,
        "b_owner": owner,
        "b_version": state.version,
    }


def _held_outcome(row: Row | None) -> tuple[bool, str | None]:
    """What a write of a held saga (``… WHERE <held> RETURNING cancel_reason``) found:
    whether it was still held, and its current cancel request."""
    return (False, None) if row is None else (True, row["cancel_reason"])


class SqlSagaRows(SqlRepository):
    async def create(
        self, order_id: str, card: Card, now_us: int, owner: str, expires_us: int
    ) -> None:
        """A new saga at its first step, held by ``owner`` (PlaceOrder's transaction)."""
        row = {
            **_started(Step.RESERVE, now_us, owner, expires_us),
            "order_id": order_id,
            "payment_id": "",
            "authorized": False,
            "captured": False,
            "outcome": None,
            "reason": "",
            "compensate_from": None,
            "cancel_reason": None,
            "card_json": codec.card_json(card),
            "version": 0,
        }
        await self._tx.execute(_CREATE, row)

    async def lock(self, order_id: str) -> Held | None:
        """Who holds the saga, its row locked for the rest of the transaction (serializes
        the saga's end with cancellations; SQLite's writer lock already does)."""
        row = await self._tx.fetch_one(_LOCK, {"b_order_id": order_id})
        if row is None:
            return None
        return Held(row["owner"], row["version"], row["status"] == RUNNING, row["cancel_reason"])

    async def held_running(self, order_id: str, owner: str) -> Row | None:
        """The whole row of a running saga ``owner`` holds."""
        return await self._tx.fetch_one(_HELD_RUNNING, {"b_order_id": order_id, "b_owner": owner})

    async def request_cancel(self, order_id: str, reason: str, now_us: int) -> None:
        """Asks a running saga to stop at its next step and compensate."""
        params = {"b_order_id": order_id, "cancel_reason": reason, "updated_at_us": now_us}
        await self._tx.execute(_UPDATE, params)

    async def reopen_for_cancel(
        self, order_id: str, reason: str, now_us: int, owner: str, expires_us: int
    ) -> None:
        """Restarts an ended saga of a confirmed order to refund and restock it."""
        row = {
            **_started(Step.COMPENSATE, now_us, owner, expires_us),
            "b_order_id": order_id,
            "outcome": Outcome.CANCELLED.value,
            "reason": reason,
            "compensate_from": Step.COMPLETE.value,
            "cancel_reason": reason,
            "authorized": True,
            "captured": True,
        }
        await self._tx.execute(_REOPEN, row)

    async def save(self, state: SagaState, owner: str, now_us: int) -> tuple[bool, str | None]:
        """Writes the saga's fields if ``owner`` still holds ``state.version``: (saved, the
        current cancel request)."""
        return _held_outcome(await self._tx.fetch_one(_SAVE, _held_write(state, owner, now_us)))

    async def end(self, state: SagaState, owner: str, now_us: int) -> tuple[bool, str | None]:
        """Ends the saga if ``owner`` still holds ``state.version`` (card wiped): (ended, the
        current cancel request). Its row stays locked for the rest of the transaction."""
        params = {
            **_held_write(state, owner, now_us),
            "step": Step.DONE.value,
            "status": ENDED,
            "card_json": None,  # the card is needed no more: wipe it
            "retry_deadline_us": None,
            "owner": None,
            "lease_expires_us": None,
        }
        return _held_outcome(await self._tx.fetch_one(_END, params))

    async def renew(self, order_ids: Collection[str], owner: str, expires_us: int) -> set[str]:
        """Extends the leases of ``order_ids`` held by ``owner``; returns those still held."""
        params = {"ids": list(order_ids), "b_owner": owner, "b_expires": expires_us}
        return {row["order_id"] for row in await self._tx.fetch_all(_RENEW, params)}

    async def adopt(self, limit: int, owner: str, now_us: int, expires_us: int) -> list[str]:
        """Claims up to ``limit`` free sagas (released, or their lease expired), oldest
        first. On PostgreSQL rows being claimed or cancelled elsewhere are skipped (``FOR
        UPDATE SKIP LOCKED``); on SQLite the write transaction serializes adopters."""
        rows = await self._tx.fetch_all(_CANDIDATES, {"b_now": now_us, "b_limit": limit})
        order_ids = [row["order_id"] for row in rows]
        if not order_ids:
            return []
        params = {"ids": order_ids, "b_now": now_us, "b_owner": owner, "b_expires": expires_us}
        adopted = {row["order_id"] for row in await self._tx.fetch_all(_CLAIM, params)}
        return [order_id for order_id in order_ids if order_id in adopted]

    async def release(self, order_ids: Collection[str], owner: str) -> None:
        """Gives up ``owner``'s leases of ``order_ids``: any instance may adopt them now."""
        await self._tx.execute(_RELEASE, {"ids": list(order_ids), "b_owner": owner})

    async def running(self) -> tuple[int, int | None]:
        """How many sagas run, and when the oldest of them started (µs, or ``None``)."""
        row = await self._tx.fetch_one(_RUNNING)
        assert row is not None
        count, oldest_us = row[0], row[1]
        return int(count), None if oldest_us is None else int(oldest_us)
