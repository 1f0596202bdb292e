"""Opaque page tokens for ListProducts: the last key seen, bound to the filter.

A token is base64url JSON ``{"k": kind, "a": last product id, "f": filter fingerprint}``.
It is not a secret (forging one only moves the starting point), but a token issued for
another filter, or by another list, is refused rather than silently mixing result sets.
Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

from services.platform.errors import FieldViolation, InvalidArgument

_KIND = "catalog.products.v1"
_MAX_TOKEN = 512


def fingerprint(*filter_values: str) -> str:
    digest = hashlib.sha256(json.dumps(filter_values).encode()).hexdigest()
    return digest[:16]


def encode(after: str, *filter_values: str) -> str:
    body = json.dumps({"k": _KIND, "a": after, "f": fingerprint(*filter_values)})
    return base64.urlsafe_b64encode(body.encode()).rstrip(b"=").decode()


def _invalid(description: str) -> InvalidArgument:
    return InvalidArgument([FieldViolation("page_token", description)])


def decode(token: str, *filter_values: str) -> str:
    """The key after which the next page starts; INVALID_ARGUMENT on a bad token."""
    if len(token) > _MAX_TOKEN:
        raise _invalid("is not a page token of this list")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw.decode())
    except (binascii.Error, ValueError):  # UnicodeDecodeError and JSONDecodeError included
        raise _invalid("is not a page token of this list") from None
    if (
        not isinstance(body, dict)
        or body.get("k") != _KIND
        or not isinstance(body.get("a"), str)
        or not isinstance(body.get("f"), str)
    ):
        raise _invalid("is not a page token of this list")
    if body["f"] != fingerprint(*filter_values):
        raise _invalid("was issued for a different filter")
    after: str = body["a"]
    return after
