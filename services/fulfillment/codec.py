"""Fulfillment's conversions: domain ↔ protobuf (the API's Shipment, the events) and rows."""

from __future__ import annotations

from typing import Any

from emporium.fulfillment.v1 import events_pb2 as events
from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb

from services.fulfillment.domain import Shipment, ShipmentStatus
from services.platform.clock import optional_timestamp, timestamp
from services.platform.codec import field_names, fields_of, from_row
from services.platform.db import Row

#: The shipment's fields that the API message and the dispatch event hold as they are.
_SHARED = ("shipment_id", "order_id", "carrier", "tracking_number")


def shipment_proto(shipment: Shipment) -> pb.Shipment:
    return pb.Shipment(
        **fields_of(shipment, *_SHARED),
        status=pb.ShipmentStatus.Value(f"SHIPMENT_STATUS_{shipment.status.value}"),
        create_time=timestamp(shipment.created_at_us),
        dispatch_time=optional_timestamp(shipment.dispatched_at_us),
    )


def shipment_created(shipment: Shipment) -> events.ShipmentCreated:
    return events.ShipmentCreated(
        **fields_of(shipment, "shipment_id", "order_id"),
        occur_time=timestamp(shipment.created_at_us),
    )


def shipment_dispatched(shipment: Shipment, at_us: int) -> events.ShipmentDispatched:
    return events.ShipmentDispatched(**fields_of(shipment, *_SHARED), occur_time=timestamp(at_us))


def shipment_row(shipment: Shipment) -> dict[str, Any]:
    return {
        **fields_of(shipment, *field_names(Shipment)),
        "status": shipment.status.value,
    }


def shipment_from_row(row: Row) -> Shipment:
    return from_row(Shipment, row, status=ShipmentStatus(row["status"]))
