"""The PaymentService servicer: proto in, command to the use case, proto out."""

from __future__ import annotations

from emporium.payment.v1 import payment_service_pb2 as pb
from emporium.payment.v1 import payment_service_pb2_grpc as pb_grpc

from services.payment import codec
from services.payment.domain import (
    AuthorizePayment,
    CapturePayment,
    GetPayment,
    RefundPayment,
    VoidAuthorization,
)
from services.payment.handlers import Payments
from services.platform.types import Context


class PaymentServicer(pb_grpc.PaymentServiceServicer):
    def __init__(self, payments: Payments) -> None:
        self._payments = payments

    async def AuthorizePayment(
        self, request: pb.AuthorizePaymentRequest, context: Context
    ) -> pb.AuthorizePaymentResponse:
        payment = await self._payments.authorize(
            AuthorizePayment(
                idempotency_key=request.idempotency_key,
                order_id=request.order_id,
                amount=codec.money_from(request.amount),
                card=codec.card_from(request.card),
            )
        )
        return pb.AuthorizePaymentResponse(payment=codec.payment(payment))

    async def CapturePayment(
        self, request: pb.CapturePaymentRequest, context: Context
    ) -> pb.CapturePaymentResponse:
        payment = await self._payments.capture(CapturePayment(request.payment_id))
        return pb.CapturePaymentResponse(payment=codec.payment(payment))

    async def VoidAuthorization(
        self, request: pb.VoidAuthorizationRequest, context: Context
    ) -> pb.VoidAuthorizationResponse:
        payment = await self._payments.void(VoidAuthorization(request.payment_id, request.reason))
        return pb.VoidAuthorizationResponse(payment=codec.payment(payment))

    async def RefundPayment(
        self, request: pb.RefundPaymentRequest, context: Context
    ) -> pb.RefundPaymentResponse:
        payment = await self._payments.refund(
            RefundPayment(
                payment_id=request.payment_id,
                amount=codec.money_from(request.amount) if request.HasField("amount") else None,
                reason=request.reason,
                idempotency_key=request.idempotency_key,
            )
        )
        return pb.RefundPaymentResponse(payment=codec.payment(payment))

    async def GetPayment(
        self, request: pb.GetPaymentRequest, context: Context
    ) -> pb.GetPaymentResponse:
        payment = await self._payments.get(GetPayment(request.payment_id))
        return pb.GetPaymentResponse(payment=codec.payment(payment))
