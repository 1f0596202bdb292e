"""Fulfillment's conversions: domain ↔ protobuf (the API's Shipment, the events) and rows."""

from __future__ import annotations

from emporium.fulfillment.v1 import events_pb2 as events
from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb

from services.fulfillment.domain import Shipment, ShipmentStatus
from services.platform.clock import timestamp
from services.platform.db import Row


def shipment_proto(shipment: Shipment) -> pb.Shipment:
    message = pb.Shipment(
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        status=pb.ShipmentStatus.Value(f"SHIPMENT_STATUS_{shipment.status.value}"),
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        create_time=timestamp(shipment.created_at_us),
    )
    if shipment.dispatched_at_us is not None:
        message.dispatch_time.CopyFrom(timestamp(shipment.dispatched_at_us))
    return message


def shipment_created(shipment: Shipment) -> events.ShipmentCreated:
    return events.ShipmentCreated(
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        occur_time=timestamp(shipment.created_at_us),
    )


def shipment_dispatched(shipment: Shipment, at_us: int) -> events.ShipmentDispatched:
    return events.ShipmentDispatched(
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        occur_time=timestamp(at_us),
    )


def shipment_from_row(row: Row) -> Shipment:
    return Shipment(
        shipment_id=row["shipment_id"],
        order_id=row["order_id"],
        user_id=row["user_id"],
        status=ShipmentStatus(row["status"]),
        shipping_address=row["shipping_address"],
        created_at_us=row["created_at_us"],
        carrier=row["carrier"],
        tracking_number=row["tracking_number"],
        dispatched_at_us=row["dispatched_at_us"],
    )
