"""Type aliases shared by every service."""

from __future__ import annotations

from typing import Any, TypeAlias

from grpc import aio

#: The servicer context every handler receives (requests and responses are typed per RPC).
Context: TypeAlias = aio.ServicerContext[Any, Any]
