"""One wiring of the bus for every service: publishing its outbox, consuming streams.

``outbox_publishing`` runs the relay, woken only by the database's commit hook (after
commits that wrote outbox rows: a handler's, or a consumer's whose handlers recorded
events). ``consuming`` runs a consumer group member. Each returns ``(on_start,
on_stop)`` hooks; without ``REDIS_URL`` both return nothing to run: the service still
serves and its outbox keeps the events until a relay runs.

    start_pub, stop_pub = outbox_publishing(settings, db, metrics)
    start_sub, stop_sub = consuming(settings, db, metrics, contexts=["order"], handlers=...)
    on_start = [*start_pub, *start_sub]
    on_stop = [*stop_sub, *stop_pub, db.dispose]   # consumers first, then the relay
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.platform.bus import Bus, stream_name
from services.platform.config import Settings
from services.platform.consumer import Consumer, Handler
from services.platform.db import Database
from services.platform.metrics import Metrics
from services.platform.relay import OutboxRelay
from services.platform.server import Hook

Hooks = tuple[list[Hook], list[Hook]]


def outbox_publishing(settings: Settings, db: Database, metrics: Metrics) -> Hooks:
    """The ``on_start`` and ``on_stop`` hooks that publish ``db``'s outbox to the bus."""
    if not settings.redis_url:
        return [], []
    bus = Bus.from_url(settings.redis_url)
    relay = OutboxRelay(db, bus, metrics=metrics)
    db.on_commit.append(relay.notify)
    return [relay.start], [relay.stop, bus.close]


def consuming(
    settings: Settings,
    db: Database,
    metrics: Metrics,
    *,
    contexts: Sequence[str],
    handlers: Mapping[str, Handler],
    group: str | None = None,
    **options: Any,
) -> Hooks:
    """The hooks of a member of consumer group ``group`` (default: the service's name)
    reading the streams of ``contexts``; ``options`` go to :class:`Consumer`.

    ``handlers`` take the consumer's :class:`~services.platform.db.Transaction`
    (``uow.event_handler`` makes one from an effect on a service's repositories).

    The group's name is also what ``python -m services <service> dead-letters`` reads,
    so keep the default unless a service consumes in several groups.
    """
    if not settings.redis_url:
        return [], []
    bus = Bus.from_url(settings.redis_url)
    consumer = Consumer(
        db,
        bus,
        group=group or settings.service,
        streams=[stream_name(context) for context in contexts],
        handlers=handlers,
        metrics=metrics,
        **options,
    )
    return [consumer.start], [consumer.stop, bus.close]
