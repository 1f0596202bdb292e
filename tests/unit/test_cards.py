"""Order and payment check a card by the one rule of platform/cards.py: the same card gets
the same answer, field by field and word for word, from either service."""

from __future__ import annotations

from dataclasses import replace

import pytest

from services.order import domain as order
from services.payment import domain as payment
from services.platform.cards import Card, luhn_valid
from services.platform.errors import FieldViolation, InvalidArgument

GOOD = Card("4242424242424242", 12, 2030, "123", "Ada Lovelace")
ADDRESS = order.Address("Ada Lovelace", "1 Analytical St", "", "London", "N1 9GU", "GB")


def _card_violations(command: order.PlaceOrder | payment.AuthorizePayment) -> list[FieldViolation]:
    with pytest.raises(InvalidArgument) as caught:
        command.validate()
    return [v for v in caught.value.violations if v.field.startswith("card.")]


@pytest.mark.parametrize(
    "card",
    [
        replace(GOOD, number="4242"),
        replace(GOOD, number="4242424242424241"),  # fails Luhn
        replace(GOOD, expiry_month=13, expiry_year=30, cvc="12", holder_name="x" * 101),
    ],
)
def test_both_services_reject_a_bad_card_with_the_same_violations(card: Card) -> None:
    placing = order.PlaceOrder("key-1", (order.RequestedLine("p-1", 1),), card, ADDRESS)
    authorizing = payment.AuthorizePayment("key-1", "o-1", payment.Money(100, "EUR"), card)
    from_order = _card_violations(placing)
    assert from_order
    assert from_order == _card_violations(authorizing)


def test_the_luhn_checksum_tells_a_mistyped_digit() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424241")


def test_a_card_repr_shows_neither_number_nor_cvc() -> None:
    assert "4242424242424242" not in repr(GOOD)
    assert "123" not in repr(GOOD)
