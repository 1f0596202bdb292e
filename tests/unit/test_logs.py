"""The access log's fast path writes the same JSON object the logging machinery would."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from services.platform import logs

FIELDS: dict[str, Any] = {
    "method": '/x.v1.X/Y "quoted" \\ back',
    "code": "OK",
    "duration_ms": 1.234,
    "count": 3,
    "flag": True,
    "nothing": None,
    "unicode": "caf\u00e9 \u2603",
    "nested": {"a": [1, 2]},
    "not_a_number": float("nan"),
}


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], io.StringIO]]:
    """Configures the process's JSON logs into a buffer, as the only root handler. Called
    in the test itself: pytest sets its own stdout and log-capturing handler for each
    test's call, after the fixtures ran."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def configure() -> io.StringIO:
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        logs.configure("catalog")
        return out

    try:
        yield configure
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _entries(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_fast_line_is_the_line_the_formatter_writes(configure: Callable[[], io.StringIO]) -> None:
    stdout = configure()
    logger = logging.getLogger("emporium.access")
    logs.fast_line(logger, logging.INFO, "rpc", FIELDS)
    logger.info("rpc", extra=FIELDS)
    fast, formatted = _entries(stdout)
    assert fast.pop("ts")[-1] == "Z"
    formatted.pop("ts")
    assert fast.pop("not_a_number") is None  # JSON has no NaN
    formatted.pop("not_a_number")
    assert fast == formatted
    assert fast["method"] == FIELDS["method"]
    assert fast["level"] == "info"
    assert fast["service"] == "catalog"


def test_a_fast_line_below_the_level_writes_nothing(configure: Callable[[], io.StringIO]) -> None:
    stdout = configure()
    logs.fast_line(logging.getLogger("emporium.access"), logging.DEBUG, "rpc", FIELDS)
    assert stdout.getvalue() == ""


def test_a_fast_line_goes_through_logging_when_another_handler_listens(
    configure: Callable[[], io.StringIO],
) -> None:
    caught: list[logging.LogRecord] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            caught.append(record)

    stdout = configure()
    logging.getLogger().addHandler(Catch())
    logs.fast_line(logging.getLogger("emporium.access"), logging.WARNING, "rpc", {"code": "X"})
    assert [(r.getMessage(), r.__dict__["code"]) for r in caught] == [("rpc", "X")]
    assert _entries(stdout)[0]["code"] == "X"
