"""The InventoryService servicer: proto in, command to the use case, proto out."""

from __future__ import annotations

from emporium.inventory.v1 import inventory_service_pb2 as pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as pb_grpc

from services.inventory import codec
from services.inventory.domain import (
    AdjustStock,
    CommitReservation,
    GetStock,
    ReleaseReservation,
    ReserveStock,
)
from services.inventory.handlers import Inventory
from services.platform.types import Context


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory

    async def GetStock(self, request: pb.GetStockRequest, context: Context) -> pb.GetStockResponse:
        level = await self._inventory.get_stock(GetStock(request.sku))
        return pb.GetStockResponse(stock=codec.stock_proto(level))

    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: Context
    ) -> pb.ReserveStockResponse:
        command = ReserveStock(
            request.order_id, codec.lines_from(request.lines), request.ttl_seconds
        )
        reservation = await self._inventory.reserve(command)
        return pb.ReserveStockResponse(reservation=codec.reservation_proto(reservation))

    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: Context
    ) -> pb.ReleaseReservationResponse:
        command = ReleaseReservation(request.order_id, request.reason)
        reservation = await self._inventory.release(command)
        if reservation is None:
            return pb.ReleaseReservationResponse()
        return pb.ReleaseReservationResponse(reservation=codec.reservation_proto(reservation))

    async def CommitReservation(
        self, request: pb.CommitReservationRequest, context: Context
    ) -> pb.CommitReservationResponse:
        reservation = await self._inventory.commit(CommitReservation(request.order_id))
        return pb.CommitReservationResponse(reservation=codec.reservation_proto(reservation))

    async def AdjustStock(
        self, request: pb.AdjustStockRequest, context: Context
    ) -> pb.AdjustStockResponse:
        command = AdjustStock(request.sku, request.delta, request.reason)
        level = await self._inventory.adjust(command)
        return pb.AdjustStockResponse(stock=codec.stock_proto(level))
