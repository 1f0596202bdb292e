"""A payment card as the customer gives it, and the one check of its details.

Two services take a card: order (``PlaceOrder`` refuses a bad one before its saga starts,
and the saga hands it on) and payment (which authorizes with it). Both check it here, so
the rule and its messages are the same on either side. Standard library only, so domain
modules can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from services.platform.errors import Validator

_NUMBER = re.compile(r"^[0-9]{12,19}$")
_CVC = re.compile(r"^[0-9]{3,4}$")
MAX_HOLDER = 100
MIN_EXPIRY_YEAR, MAX_EXPIRY_YEAR = 2000, 2199


@dataclass(frozen=True, slots=True)
class Card:
    """Card details: never in an event or a log (``repr`` leaves out the number and CVC);
    only the last four digits are ever stored for good."""

    number: str = field(repr=False)
    expiry_month: int
    expiry_year: int
    cvc: str = field(repr=False)
    holder_name: str = ""

    @property
    def last4(self) -> str:
        return self.number[-4:]

    def check(self, v: Validator) -> None:
        """Records in ``v`` what is wrong with the details (fields ``card.*``)."""
        if v.check(bool(_NUMBER.match(self.number)), "card.number", "must be 12-19 digits"):
            v.check(luhn_valid(self.number), "card.number", "is not a valid card number")
        v.check(1 <= self.expiry_month <= 12, "card.expiry_month", "must be between 1 and 12")
        v.check(
            MIN_EXPIRY_YEAR <= self.expiry_year <= MAX_EXPIRY_YEAR,
            "card.expiry_year",
            f"must be a four-digit year between {MIN_EXPIRY_YEAR} and {MAX_EXPIRY_YEAR}",
        )
        v.check(bool(_CVC.match(self.cvc)), "card.cvc", "must be 3 or 4 digits")
        v.text(self.holder_name, "card.holder_name", max_len=MAX_HOLDER, required=False)


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) checksum every card number carries."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0
