"""The FulfillmentService servicer: proto in, query to the use case, proto out."""

from __future__ import annotations

from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as pb_grpc

from services.fulfillment.domain import CancelShipment, GetShipment, Shipment
from services.fulfillment.handlers import Fulfillment
from services.platform.clock import timestamp
from services.platform.types import Context


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


class FulfillmentServicer(pb_grpc.FulfillmentServiceServicer):
    def __init__(self, fulfillment: Fulfillment) -> None:
        self._fulfillment = fulfillment

    async def GetShipment(
        self, request: pb.GetShipmentRequest, context: Context
    ) -> pb.GetShipmentResponse:
        shipment = await self._fulfillment.get_shipment(GetShipment(request.order_id))
        return pb.GetShipmentResponse(shipment=shipment_proto(shipment))

    async def CancelShipment(
        self, request: pb.CancelShipmentRequest, context: Context
    ) -> pb.CancelShipmentResponse:
        command = CancelShipment(request.order_id, request.reason)
        shipment = await self._fulfillment.cancel_shipment(command)
        return pb.CancelShipmentResponse(shipment=shipment_proto(shipment))
