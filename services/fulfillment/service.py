"""The FulfillmentService servicer: proto in, query to the use case, proto out."""

from __future__ import annotations

from emporium.fulfillment.v1 import fulfillment_service_pb2 as pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as pb_grpc

from services.fulfillment import codec
from services.fulfillment.domain import CancelShipment, GetShipment
from services.fulfillment.handlers import Fulfillment
from services.platform.types import Context


class FulfillmentServicer(pb_grpc.FulfillmentServiceServicer):
    def __init__(self, fulfillment: Fulfillment) -> None:
        self._fulfillment = fulfillment

    async def GetShipment(
        self, request: pb.GetShipmentRequest, context: Context
    ) -> pb.GetShipmentResponse:
        shipment = await self._fulfillment.get_shipment(GetShipment(request.order_id))
        return pb.GetShipmentResponse(shipment=codec.shipment_proto(shipment))

    async def CancelShipment(
        self, request: pb.CancelShipmentRequest, context: Context
    ) -> pb.CancelShipmentResponse:
        command = CancelShipment(request.order_id, request.reason)
        shipment = await self._fulfillment.cancel_shipment(command)
        return pb.CancelShipmentResponse(shipment=codec.shipment_proto(shipment))
