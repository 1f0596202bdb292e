"""Publishing a service's outbox: the relay to the bus, woken after every commit."""

from __future__ import annotations

from services.platform.bus import Bus
from services.platform.config import Settings
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.relay import OutboxRelay
from services.platform.server import Hook


def outbox_publishing(
    settings: Settings, db: Database, metrics: Metrics
) -> tuple[list[Hook], list[Hook]]:
    """The ``on_start`` and ``on_stop`` hooks that publish ``db``'s outbox to the bus.

    Without ``REDIS_URL`` there is nothing to start: the service still serves, and the
    outbox keeps its events until a relay runs.
    """
    if not settings.redis_url:
        return [], []
    bus = Bus.from_url(settings.redis_url)
    relay = OutboxRelay(db, bus, metrics=metrics)
    db.on_commit.append(relay.notify)
    return [relay.start], [relay.stop, bus.close]
