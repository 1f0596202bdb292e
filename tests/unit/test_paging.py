"""Page tokens: opaque, bound to their list and filter, and every crafted one refused."""

from __future__ import annotations

import base64
import json

import pytest

from services.platform.errors import InvalidArgument
from services.platform.paging import MAX_TOKEN_LENGTH, PageTokens

ORDERS = PageTokens("order.orders.v1", (int, str))
PRODUCTS = PageTokens("catalog.products.v1", (str,))


def _craft(body: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()


def test_a_token_round_trips_with_the_same_list_and_filter() -> None:
    token = ORDERS.encode((1_700_000_000_000_000, "order-1"), "user-1")
    assert len(token) < 200
    assert ORDERS.decode(token, "user-1") == (1_700_000_000_000_000, "order-1")
    assert ORDERS.decode("", "user-1") is None


def _refused(tokens: PageTokens, token: str, *filter_values: str) -> str:
    with pytest.raises(InvalidArgument) as caught:
        tokens.decode(token, *filter_values)
    [violation] = caught.value.violations
    assert violation.field == "page_token"
    return violation.description


def test_a_token_of_another_filter_or_list_is_refused() -> None:
    token = ORDERS.encode((1, "order-1"), "user-1")
    assert _refused(ORDERS, token, "user-2") == "was issued for a different filter"
    assert _refused(PRODUCTS, PRODUCTS.encode(("p",), "a")[:-2] + "xx", "a")
    assert _refused(PRODUCTS, token, "user-1")


@pytest.mark.parametrize(
    "token",
    [
        _craft({"k": "order.orders.v1", "p": [10**400, "o"], "f": "x"}),  # huge integer
        _craft({"k": "order.orders.v1", "p": [2**63, "o"], "f": "x"}),  # just past BIGINT
        _craft({"k": "order.orders.v1", "p": [1.5, "o"], "f": "x"}),  # not an integer
        _craft({"k": "order.orders.v1", "p": [True, "o"], "f": "x"}),  # bool is no int
        _craft({"k": "order.orders.v1", "p": [1, "o" * 200], "f": "x"}),  # long text
        _craft({"k": "order.orders.v1", "p": [1], "f": "x"}),  # wrong shape
        _craft({"k": "order.orders.v1", "p": [1, "o"], "f": "x", "extra": 1}),
        _craft({"k": "order.orders.v1", "p": {"a": 1}, "f": "x"}),
        _craft([1, "o"]),  # the old order token
        _craft(json.loads("[" * 100 + "]" * 100)),  # deep nesting
        "[" * 300,  # not base64url
        "A" * (MAX_TOKEN_LENGTH + 1),  # too long
        "A" * 10_000,
        "%%%%",
        "YQ",  # base64 of "a": not JSON
        "_w",  # not UTF-8
    ],
)
def test_crafted_tokens_are_invalid_argument(token: str) -> None:
    assert _refused(ORDERS, token, "user-1") == "is not a page token of this list"


def test_deep_nesting_within_the_length_limit_is_refused_without_recursing() -> None:
    token = base64.urlsafe_b64encode(b"[" * 380).rstrip(b"=").decode()
    assert len(token) <= MAX_TOKEN_LENGTH
    _refused(ORDERS, token, "user-1")


def test_positions_that_could_not_be_decoded_are_not_encoded() -> None:
    with pytest.raises(ValueError, match="shape"):
        ORDERS.encode((2**63, "o"), "u")
    with pytest.raises(ValueError, match="shape"):
        ORDERS.encode(("o", 1), "u")
