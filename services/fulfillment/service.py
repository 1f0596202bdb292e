"""The FulfillmentService servicer: proto in, query to the use case, proto out."""

from __future__ import annotations

from typing import Any

from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as pb_grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc import aio

from services.fulfillment.domain import GetShipment, Shipment
from services.fulfillment.handlers import Fulfillment

Context = aio.ServicerContext[Any, Any]


def _timestamp(micros: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromMicroseconds(micros)
    return stamp


def shipment_proto(shipment: Shipment) -> pb.Shipment:
    message = pb.Shipment(
        shipment_id=shipment.shipment_id,
        order_id=shipment.order_id,
        status=pb.ShipmentStatus.Value(f"SHIPMENT_STATUS_{shipment.status.value}"),
        carrier=shipment.carrier,
        tracking_number=shipment.tracking_number,
        create_time=_timestamp(shipment.created_at_us),
    )
    if shipment.dispatched_at_us is not None:
        message.dispatch_time.CopyFrom(_timestamp(shipment.dispatched_at_us))
    return message


class FulfillmentServicer(pb_grpc.FulfillmentServiceServicer):
    def __init__(self, fulfillment: Fulfillment) -> None:
        self._fulfillment = fulfillment

    async def GetShipment(
        self, request: pb.GetShipmentRequest, context: Context
    ) -> pb.GetShipmentResponse:
        shipment = await self._fulfillment.get_shipment(GetShipment(request.order_id))
        return pb.GetShipmentResponse(shipment=shipment_proto(shipment))
