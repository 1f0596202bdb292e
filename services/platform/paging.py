"""Opaque page tokens for every List RPC: a keyset position, bound to its list and filter.

A token is base64url (unpadded) JSON ``{"k": kind, "p": [position...], "f": fingerprint}``:
``kind`` names the list, ``position`` is the sort key of the last item returned and
``fingerprint`` a hash of the filter the list was called with. Tokens are not secret
(forging one only moves the starting point within what the caller may see), but anything
that is not a token this list issued for this filter is INVALID_ARGUMENT on
``page_token``, before it reaches a query:

- longer than ``MAX_TOKEN_LENGTH`` characters, or not base64url;
- not JSON, nested, or not of the list's shape (``position`` types, in order);
- an integer outside the signed 64-bit range the databases store, a string longer than
  ``MAX_TEXT``;
- issued by another list or for another filter.

Standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Sequence

from services.platform.errors import FieldViolation, InvalidArgument

#: The longest token accepted: an issued token is well under 200 characters.
MAX_TOKEN_LENGTH = 512
#: The longest string a position may hold.
MAX_TEXT = 128
#: Integers in a position are BIGINT columns.
MIN_INT, MAX_INT = -(2**63), 2**63 - 1

Position = tuple[int | str, ...]

_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")
_NOT_OURS = "is not a page token of this list"


def _invalid(description: str = _NOT_OURS) -> InvalidArgument:
    return InvalidArgument([FieldViolation("page_token", description)])


def _fingerprint(filter_values: Sequence[str]) -> str:
    return hashlib.sha256(json.dumps(list(filter_values)).encode()).hexdigest()[:16]


def _valid_part(value: object, kind: type) -> bool:
    if kind is int:
        return type(value) is int and MIN_INT <= value <= MAX_INT
    return type(value) is str and len(value) <= MAX_TEXT


class PageTokens:
    """The page tokens of one list, whose positions have the types ``shape``."""

    def __init__(self, kind: str, shape: tuple[type, ...]) -> None:
        if not shape or any(t not in (int, str) for t in shape):
            raise ValueError("a position is a non-empty tuple of int and str")
        self._kind = kind
        self._shape = shape

    def encode(self, position: Position, *filter_values: str) -> str:
        """The token of the page after ``position`` for the list called with ``filter_values``."""
        if len(position) != len(self._shape) or not all(
            _valid_part(v, t) for v, t in zip(position, self._shape, strict=True)
        ):
            raise ValueError(f"position {position!r} does not have the shape {self._shape}")
        body = {"k": self._kind, "p": list(position), "f": _fingerprint(filter_values)}
        raw = json.dumps(body, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def decode(self, token: str, *filter_values: str) -> Position | None:
        """The position after which the page starts (``None`` for an empty token: the
        first page); INVALID_ARGUMENT for anything this list did not issue."""
        if not token:
            return None
        if len(token) > MAX_TOKEN_LENGTH or not _ALPHABET.match(token):
            raise _invalid()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            body = json.loads(raw.decode())
        except (binascii.Error, ValueError, RecursionError):  # JSON and Unicode errors too
            raise _invalid() from None
        if not isinstance(body, dict) or set(body) != {"k", "p", "f"} or body["k"] != self._kind:
            raise _invalid()
        position = body["p"]
        if (
            not isinstance(position, list)
            or len(position) != len(self._shape)
            or not all(_valid_part(v, t) for v, t in zip(position, self._shape, strict=True))
        ):
            raise _invalid()
        if body["f"] != _fingerprint(filter_values):
            raise _invalid("was issued for a different filter")
        return tuple(position)
