"""Inventory's conversions: domain ↔ protobuf (API resources, events) and table rows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from emporium.inventory.v1 import events_pb2 as events
from emporium.inventory.v1 import inventory_service_pb2 as pb

from services.inventory.domain import AdjustStock, Line, Reservation, Status, StockLevel
from services.platform.clock import optional_timestamp, timestamp
from services.platform.codec import fields_of, from_row
from services.platform.db import Row

_STATUS: dict[Status, pb.ReservationStatus.ValueType] = {
    Status.RESERVED: pb.RESERVATION_STATUS_RESERVED,
    Status.FAILED: pb.RESERVATION_STATUS_FAILED,
    Status.RELEASED: pb.RESERVATION_STATUS_RELEASED,
    Status.COMMITTED: pb.RESERVATION_STATUS_COMMITTED,
    Status.EXPIRED: pb.RESERVATION_STATUS_EXPIRED,
}


def lines_from(protos: Iterable[pb.ReservationLine]) -> tuple[Line, ...]:
    return tuple(Line(line.sku, line.quantity) for line in protos)


def line_protos(lines: tuple[Line, ...]) -> list[pb.ReservationLine]:
    return [pb.ReservationLine(sku=line.sku, quantity=line.quantity) for line in lines]


def reservation_proto(reservation: Reservation) -> pb.Reservation:
    return pb.Reservation(
        **fields_of(reservation, "reservation_id", "order_id"),
        status=_STATUS[reservation.status],
        lines=line_protos(reservation.lines),
        expire_time=optional_timestamp(reservation.expires_at_us),
        unavailable_skus=list(reservation.unavailable_skus),
        create_time=timestamp(reservation.created_at_us),
        update_time=timestamp(reservation.updated_at_us),
    )


def stock_proto(level: StockLevel) -> pb.StockLevel:
    return pb.StockLevel(
        **fields_of(level, "sku", "available", "reserved", "sold"),
        update_time=timestamp(level.updated_at_us),
    )


# -- events ------------------------------------------------------------------------------


def _event(reservation: Reservation) -> dict[str, Any]:
    """What the events of a held reservation say: which one, of which order, its lines and
    when it changed."""
    return {
        **fields_of(reservation, "reservation_id", "order_id"),
        "lines": line_protos(reservation.lines),
        "occur_time": timestamp(reservation.updated_at_us),
    }


def stock_reserved(reservation: Reservation) -> events.StockReserved:
    return events.StockReserved(
        **_event(reservation), expire_time=timestamp(reservation.expires_at_us or 0)
    )


def stock_reservation_failed(reservation: Reservation) -> events.StockReservationFailed:
    return events.StockReservationFailed(
        order_id=reservation.order_id,
        lines=line_protos(reservation.lines),
        unavailable_skus=list(reservation.unavailable_skus),
        reason="insufficient stock for " + ", ".join(reservation.unavailable_skus),
        occur_time=timestamp(reservation.updated_at_us),
    )


def stock_released(reservation: Reservation, reason: str) -> events.StockReleased:
    return events.StockReleased(**_event(reservation), reason=reason)


def stock_committed(reservation: Reservation) -> events.StockCommitted:
    return events.StockCommitted(**_event(reservation))


def stock_adjusted(command: AdjustStock, level: StockLevel) -> events.StockAdjusted:
    return events.StockAdjusted(
        **fields_of(level, "sku", "available"),
        **fields_of(command, "delta", "reason"),
        occur_time=timestamp(level.updated_at_us),
    )


# -- rows --------------------------------------------------------------------------------


def reservation_row(reservation: Reservation) -> dict[str, Any]:
    return {
        **fields_of(reservation, "reservation_id", "order_id", "expires_at_us"),
        **fields_of(reservation, "created_at_us", "updated_at_us"),
        "status": reservation.status.value,
    }


def reservation_line_rows(reservation: Reservation) -> list[dict[str, Any]]:
    """One row per line, in order; a line the reservation could not hold is marked."""
    unavailable = set(reservation.unavailable_skus)
    return [
        {
            "reservation_id": reservation.reservation_id,
            "position": position,
            "sku": line.sku,
            "quantity": line.quantity,
            "unavailable": line.sku in unavailable,
        }
        for position, line in enumerate(reservation.lines)
    ]


def stock_from_row(row: Row) -> StockLevel:
    return from_row(StockLevel, row)


def reservation_from_rows(row: Row, lines: list[Row]) -> Reservation:
    return from_row(
        Reservation,
        row,
        status=Status(row["status"]),
        lines=tuple(Line(line["sku"], line["quantity"]) for line in lines),
        unavailable_skus=tuple(line["sku"] for line in lines if line["unavailable"]),
    )
