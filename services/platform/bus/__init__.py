"""The event bus: Redis Streams with a transactional outbox and idempotent consumers.

- :mod:`.streams`: the connection (:class:`Bus`), stream names, the entry encoding;
- :mod:`.group`: a consumer group member's stream commands (read, claim, ack);
- :mod:`.applying`: applying events with the inbox, in batches;
- :mod:`.failures`: which failures are the infrastructure's (never a delivery);
- :mod:`.dead_letters`: parking, listing, replaying and discarding dead letters;
- :mod:`.metrics`: the bus's metrics.

The relay (:mod:`services.platform.relay`) publishes, the consumer
(:mod:`services.platform.consumer`) consumes, and :mod:`services.platform.publishing`
wires both into a service. See docs/messaging.md.
"""

from services.platform.bus.dead_letters import DeadLetter, DeadLetters, ReplayRefused
from services.platform.bus.failures import is_transient
from services.platform.bus.group import Delivery, GroupMember
from services.platform.bus.metrics import BusMetrics, bus_metrics
from services.platform.bus.streams import (
    FIELDS,
    MAX_BLOCK_MS,
    Bus,
    MalformedEntry,
    blocked_aggregates_key,
    dead_letter_stream,
    decode,
    encode,
    stream_name,
)

__all__ = [
    "FIELDS",
    "MAX_BLOCK_MS",
    "Bus",
    "BusMetrics",
    "DeadLetter",
    "DeadLetters",
    "Delivery",
    "GroupMember",
    "MalformedEntry",
    "ReplayRefused",
    "blocked_aggregates_key",
    "bus_metrics",
    "dead_letter_stream",
    "decode",
    "encode",
    "is_transient",
    "stream_name",
]
