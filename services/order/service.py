"""The OrderService servicer: proto in, command to the use case, proto out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from emporium.order.v1 import order_service_pb2 as pb
from emporium.order.v1 import order_service_pb2_grpc as pb_grpc

from services.order import codec
from services.order.domain import Card, OrderStatus, PlaceOrder, RequestedLine
from services.order.handlers import OrderCommands
from services.order.projector import OrderView
from services.order.queries import OrderQueries
from services.platform import auth
from services.platform.clock import timestamp
from services.platform.types import Context


def status_proto(status: OrderStatus | None) -> pb.OrderStatus.ValueType:
    if status is None:
        return pb.ORDER_STATUS_UNSPECIFIED
    return pb.OrderStatus.Value(f"ORDER_STATUS_{status.value}")


def order_proto(view: OrderView) -> pb.Order:
    return pb.Order(
        order_id=view.order_id,
        user_id=view.user_id,
        status=status_proto(view.status),
        lines=[codec.line_proto(line) for line in view.lines],
        total=codec.money_proto(view.total),
        rejection_reason=view.reason,
        payment_id=view.payment_id,
        shipment_id=view.shipment_id,
        create_time=timestamp(view.created_at_us),
        update_time=timestamp(view.updated_at_us),
        version=view.version,
        shipping_address=codec.address_proto(view.address),
    )


def place_command(request: pb.PlaceOrderRequest) -> PlaceOrder:
    card = request.card
    return PlaceOrder(
        idempotency_key=request.idempotency_key,
        lines=tuple(RequestedLine(line.product_id, line.quantity) for line in request.lines),
        card=Card(card.number, card.expiry_month, card.expiry_year, card.cvc, card.holder_name),
        address=codec.address(request.shipping_address),
    )


class OrderServicer(pb_grpc.OrderServiceServicer):
    def __init__(self, commands: OrderCommands, queries: OrderQueries) -> None:
        self._commands = commands
        self._queries = queries

    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: Context
    ) -> pb.PlaceOrderResponse:
        view = await self._commands.place(auth.current_caller(), place_command(request))
        return pb.PlaceOrderResponse(order=order_proto(view))

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        view = await self._queries.get(auth.current_caller(), request.order_id)
        return pb.GetOrderResponse(order=order_proto(view))

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        views, token = await self._queries.list_orders(
            auth.current_caller(), request.page_size, request.page_token
        )
        return pb.ListOrdersResponse(
            orders=[order_proto(view) for view in views], next_page_token=token
        )

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.CancelOrderResponse:
        view = await self._commands.cancel(auth.current_caller(), request.order_id, request.reason)
        return pb.CancelOrderResponse(order=order_proto(view))

    async def WatchOrder(
        self, request: pb.WatchOrderRequest, context: Context
    ) -> AsyncIterator[pb.WatchOrderResponse]:
        async for change in self._queries.watch(auth.current_caller(), request.order_id):
            yield pb.WatchOrderResponse(
                order=order_proto(change.order),
                previous_status=status_proto(change.previous),
                status=status_proto(change.order.status),
                change_time=timestamp(change.at_us),
            )
