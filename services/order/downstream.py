"""The ports of :mod:`services.order.ports` over gRPC: catalog, inventory and payment."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TypeVar

import grpc
from emporium.catalog.v1 import catalog_service_pb2 as catalog_pb
from emporium.catalog.v1 import catalog_service_pb2_grpc as catalog_grpc
from emporium.fulfillment.v1 import fulfillment_service_pb2 as fulfillment_pb
from emporium.fulfillment.v1 import fulfillment_service_pb2_grpc as fulfillment_grpc
from emporium.inventory.v1 import inventory_service_pb2 as inventory_pb
from emporium.inventory.v1 import inventory_service_pb2_grpc as inventory_grpc
from emporium.payment.v1 import payment_service_pb2 as payment_pb
from emporium.payment.v1 import payment_service_pb2_grpc as payment_grpc
from grpc import aio

from services.order import codec
from services.order.domain import Card, Money, Product
from services.order.ports import (
    Authorization,
    Reservation,
    ShipmentDispatched,
    SkuLine,
    StepFailed,
)
from services.platform.codec import field_names, fields_of
from services.platform.errors import Unavailable
from services.platform.resilience import retry_after
from services.platform.retry import RETRYABLE, status_code

DECLINE_REASONS = {
    payment_pb.DECLINE_REASON_CARD_DECLINED: "card declined",
    payment_pb.DECLINE_REASON_INSUFFICIENT_FUNDS: "insufficient funds",
    payment_pb.DECLINE_REASON_EXPIRED_CARD: "expired card",
    payment_pb.DECLINE_REASON_INVALID_CARD: "invalid card",
    payment_pb.DECLINE_REASON_PROCESSOR_ERROR: "processor error",
}

Req = TypeVar("Req")
Res = TypeVar("Res")

_APPROVED = (payment_pb.PAYMENT_STATUS_AUTHORIZED, payment_pb.PAYMENT_STATUS_CAPTURED)


def step_failed(service: str, error: grpc.RpcError) -> StepFailed:
    """The saga's view of a failed call: retryable or not (every saga call is idempotent, so
    repeating one is safe), and how long an open breaker asks to wait."""
    code = status_code(error)
    return StepFailed(
        f"{service} {code.name}",
        transient=code in RETRYABLE,
        code=code.name,
        retry_after=retry_after(error),
    )


async def _step(service: str, rpc: aio.UnaryUnaryMultiCallable[Req, Res], request: Req) -> Res:
    """``rpc(request)``'s response; a failed call raises :func:`step_failed`'s error."""
    try:
        return await rpc(request)
    except grpc.RpcError as error:
        raise step_failed(service, error) from error


class GrpcInventory:
    """Reservations held for ``ttl_seconds``: longer than the saga may take to commit them
    (docs/saga.md, *Outages*), so a reservation never expires under a running saga."""

    def __init__(self, stub: inventory_grpc.InventoryServiceAsyncStub, ttl_seconds: int) -> None:
        self._stub = stub
        self._ttl_seconds = ttl_seconds

    async def reserve(self, order_id: str, lines: Sequence[SkuLine]) -> Reservation:
        request = inventory_pb.ReserveStockRequest(
            order_id=order_id,
            lines=[inventory_pb.ReservationLine(sku=sku, quantity=qty) for sku, qty in lines],
            ttl_seconds=self._ttl_seconds,
        )
        response = await _step("inventory", self._stub.ReserveStock, request)
        reservation = response.reservation
        if reservation.status == inventory_pb.RESERVATION_STATUS_FAILED:
            return Reservation(False, tuple(reservation.unavailable_skus))
        if reservation.status in (
            inventory_pb.RESERVATION_STATUS_RESERVED,
            inventory_pb.RESERVATION_STATUS_COMMITTED,
        ):
            return Reservation(True)
        # Released or expired: an earlier attempt of this saga got it and it is gone now.
        raise StepFailed(
            f"inventory reservation is {inventory_pb.ReservationStatus.Name(reservation.status)}",
            transient=False,
            code="FAILED_PRECONDITION",
        )

    async def release(self, order_id: str, reason: str) -> None:
        await _step(
            "inventory",
            self._stub.ReleaseReservation,
            inventory_pb.ReleaseReservationRequest(order_id=order_id, reason=reason),
        )

    async def commit(self, order_id: str) -> None:
        await _step(
            "inventory",
            self._stub.CommitReservation,
            inventory_pb.CommitReservationRequest(order_id=order_id),
        )


def _card_proto(card: Card) -> payment_pb.PaymentCard:
    return payment_pb.PaymentCard(**fields_of(card, *field_names(Card)))


class GrpcPayments:
    def __init__(self, stub: payment_grpc.PaymentServiceAsyncStub) -> None:
        self._stub = stub

    async def authorize(
        self, idempotency_key: str, order_id: str, amount: Money, card: Card
    ) -> Authorization:
        request = payment_pb.AuthorizePaymentRequest(
            idempotency_key=idempotency_key,
            order_id=order_id,
            amount=codec.money_proto(amount),
            card=_card_proto(card),
        )
        payment = (await _step("payment", self._stub.AuthorizePayment, request)).payment
        if payment.status in _APPROVED:
            return Authorization(payment.payment_id, approved=True)
        reason = DECLINE_REASONS.get(payment.decline_reason, "declined")
        return Authorization(payment.payment_id, approved=False, decline_reason=reason)

    async def capture(self, payment_id: str) -> None:
        await _step(
            "payment",
            self._stub.CapturePayment,
            payment_pb.CapturePaymentRequest(payment_id=payment_id),
        )

    async def void(self, payment_id: str, reason: str) -> None:
        await _step(
            "payment",
            self._stub.VoidAuthorization,
            payment_pb.VoidAuthorizationRequest(payment_id=payment_id, reason=reason),
        )

    async def refund(self, payment_id: str, reason: str, idempotency_key: str) -> None:
        request = payment_pb.RefundPaymentRequest(
            payment_id=payment_id, reason=reason, idempotency_key=idempotency_key
        )
        await _step("payment", self._stub.RefundPayment, request)


def _product(proto: catalog_pb.Product) -> Product:
    return Product(proto.product_id, proto.sku, proto.name, codec.money(proto.price), proto.active)


_UNKNOWN = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)


class GrpcCatalog:
    """Prices from the catalog. The catalog being unreachable is UNAVAILABLE for the caller."""

    def __init__(self, stub: catalog_grpc.CatalogServiceAsyncStub) -> None:
        self._stub = stub

    async def products(self, product_ids: Sequence[str]) -> Mapping[str, Product]:
        ids = list(dict.fromkeys(product_ids))
        try:
            response = await self._stub.BatchGetProducts(
                catalog_pb.BatchGetProductsRequest(product_ids=ids)
            )
            return {p.product_id: _product(p) for p in response.products}
        except grpc.RpcError as error:
            if status_code(error) not in _UNKNOWN:
                raise Unavailable("the catalog is unavailable; try again later") from error
        # Some id is unknown and the batch does not say which: ask for each one.
        found = await asyncio.gather(*(self._one(product_id) for product_id in ids))
        return {p.product_id: p for p in found if p is not None}

    async def _one(self, product_id: str) -> Product | None:
        try:
            response = await self._stub.GetProduct(
                catalog_pb.GetProductRequest(product_id=product_id)
            )
        except grpc.RpcError as error:
            if status_code(error) in _UNKNOWN:
                return None
            raise Unavailable("the catalog is unavailable; try again later") from error
        return _product(response.product)


class GrpcFulfillment:
    """Asks fulfillment, the authority on "ship" versus "cancel", to cancel a shipment."""

    def __init__(self, stub: fulfillment_grpc.FulfillmentServiceAsyncStub) -> None:
        self._stub = stub

    async def cancel_shipment(self, order_id: str, reason: str) -> None:
        request = fulfillment_pb.CancelShipmentRequest(order_id=order_id, reason=reason)
        try:
            await self._stub.CancelShipment(request)
        except grpc.RpcError as error:
            if status_code(error) is grpc.StatusCode.FAILED_PRECONDITION:
                raise ShipmentDispatched(order_id) from error
            raise Unavailable(
                "fulfillment is unavailable, so the order was not cancelled; try again later"
            ) from error
