"""Schemathesis checks of Emporium's own error contract (loaded by test_schemathesis.py)."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.check
def rejection_is_a_status(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx answer carries a JSON ``google.rpc.Status``: an integer ``code`` (not OK)
    and a string ``message``."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    assert content_type.startswith("application/json"), (
        f"{response.status_code} with content-type {content_type!r}, not a JSON google.rpc.Status"
    )
    body = json.loads(response.content)
    assert isinstance(body, dict), f"{response.status_code} body is not an object: {body!r}"
    code, message = body.get("code"), body.get("message")
    assert isinstance(code, int), f"no gRPC code in the status: {body!r}"
    assert code > 0, f"an error with code OK: {body!r}"
    assert isinstance(message, str), f"no message in the status: {body!r}"
    return True
