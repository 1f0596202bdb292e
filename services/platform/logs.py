"""JSON logs on stdout, one object a line."""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_handler: logging.StreamHandler[Any] | None = None
_service = ""
_second = -1
_second_text = ""
_root = logging.getLogger()
_heads: dict[tuple[str, int, str], str] = {}


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds; the seconds part is formatted once per second."""
    global _second, _second_text
    whole = int(created)
    if whole != _second:
        _second, _second_text = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second_text}.{int((created - whole) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON: time, level, logger, message and any ``extra`` fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stdout as JSON."""
    global _handler, _service
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _handler, _service = handler, service
    _heads.clear()


def _json_value(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is int:
        return repr(value)
    if kind is float:
        return repr(value) if math.isfinite(value) else "null"  # JSON has no NaN or Infinity
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    return json.dumps(value, default=str)


def _head(logger: logging.Logger, level: int, msg: str) -> str:
    """The start of a line, up to its fields: the same for every line of ``logger``,
    ``level`` and ``msg`` but for the time, so made once."""
    key = (logger.name, level, msg)
    head = _heads.get(key)
    if head is None:
        head = _heads[key] = (
            f',"level":{_quote(logging.getLevelName(level).lower())},"service":{_quote(_service)}'
            f',"logger":{_quote(logger.name)},"msg":{_quote(msg)}'
        )
    return head


def fast_line(logger: logging.Logger, level: int, msg: str, fields: dict[str, Any]) -> None:
    """Logs ``msg`` with ``fields`` as :class:`JsonFormatter` would, without a LogRecord.

    For per-request lines (the access log): building a LogRecord and formatting it costs
    several times the write, and so does ``json.dumps`` of the whole line; here everything
    but the time and the fields is encoded once per logger, level and message. Falls back
    to the logging machinery when the process's JSON handler is not the root's alone
    (tests capturing logs, another configuration).
    """
    if not logger.isEnabledFor(level):
        return
    handler = _handler
    handlers = _root.handlers
    if handler is None or len(handlers) != 1 or handlers[0] is not handler or logger.handlers:
        logger.log(level, msg, extra=fields)
        return
    body = "".join([f",{_quote(key)}:{_json_value(value)}" for key, value in fields.items()])
    line = f'{{"ts":"{_timestamp(time.time())}"{_head(logger, level, msg)}{body}}}\n'
    handler.acquire()
    try:
        handler.stream.write(line)
        handler.stream.flush()
    except (OSError, ValueError):
        pass  # stdout closed (the launcher went away): logging must never fail a request
    finally:
        handler.release()


__all__ = ["JsonFormatter", "configure", "fast_line"]
