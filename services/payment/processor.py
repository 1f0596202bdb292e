"""The card processor port and a deterministic simulated processor (a sandbox).

Test cards of the simulated processor (any expiry in the future, any 3-digit CVC):

====================  ==========================================================
card number           outcome
====================  ==========================================================
4242424242424242      approved (Visa)
5555555555554444      approved (Mastercard)
4000000000000002      declined: CARD_DECLINED
4000000000009995      declined: INSUFFICIENT_FUNDS
4000000000000069      declined: EXPIRED_CARD
4000000000000127      declined: INVALID_CARD (incorrect CVC)
4000000000000101      FAILED: PROCESSOR_ERROR, at once
4000000000000119      the processor hangs for ``slow_card_seconds`` (10 s by default), so the
                      caller's deadline or the service's processor timeout fires first:
                      the payment is recorded FAILED with PROCESSOR_ERROR
====================  ==========================================================

Every other Luhn-valid number is approved. An expiry month already past is declined with
EXPIRED_CARD whatever the number; a number failing the Luhn check never reaches the
processor (INVALID_ARGUMENT on ``card.number``).
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from typing import Protocol

from services.payment.domain import Card, DeclineReason, Money, ProcessorResult

APPROVE_VISA = "4242424242424242"
APPROVE_MASTERCARD = "5555555555554444"
DECLINE = "4000000000000002"
INSUFFICIENT_FUNDS = "4000000000009995"
EXPIRED_CARD = "4000000000000069"
INCORRECT_CVC = "4000000000000127"
PROCESSOR_ERROR = "4000000000000101"
PROCESSOR_TIMEOUT = "4000000000000119"

_DECLINES: dict[str, DeclineReason] = {
    DECLINE: DeclineReason.CARD_DECLINED,
    INSUFFICIENT_FUNDS: DeclineReason.INSUFFICIENT_FUNDS,
    EXPIRED_CARD: DeclineReason.EXPIRED_CARD,
    INCORRECT_CVC: DeclineReason.INVALID_CARD,
    PROCESSOR_ERROR: DeclineReason.PROCESSOR_ERROR,
}


class Processor(Protocol):
    """Where authorizations are decided. May be slow; the caller bounds the wait."""

    async def authorize(self, card: Card, amount: Money) -> ProcessorResult: ...


def _today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


class SimulatedProcessor:
    """Answers by test card number, the same way every time."""

    def __init__(
        self,
        *,
        slow_card_seconds: float = 10.0,
        today: Callable[[], datetime.date] = _today,
    ) -> None:
        self.slow_card_seconds = slow_card_seconds
        self._today = today

    async def authorize(self, card: Card, amount: Money) -> ProcessorResult:
        if card.number == PROCESSOR_TIMEOUT:
            await asyncio.sleep(self.slow_card_seconds)
            return ProcessorResult.decline(DeclineReason.PROCESSOR_ERROR)
        today = self._today()
        if (card.expiry_year, card.expiry_month) < (today.year, today.month):
            return ProcessorResult.decline(DeclineReason.EXPIRED_CARD)
        reason = _DECLINES.get(card.number)
        return ProcessorResult.approve() if reason is None else ProcessorResult.decline(reason)
