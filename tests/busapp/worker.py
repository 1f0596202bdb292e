"""A relay or consumer process for the fault tests, which kill it with SIGKILL.

    python -m tests.busapp.worker consume DATABASE_URL REDIS_URL CONTEXT GROUP NAME
    python -m tests.busapp.worker relay DATABASE_URL REDIS_URL

The consumer prints ``COMMITTED`` once a batch's effects have committed and then hangs
before acknowledging them; the relay prints ``PUBLISHED <n>`` once a batch is on the
stream and hangs before marking it. The test kills the process at that moment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from services.platform.bus import Bus, stream_name
from services.platform.consumer import Consumer
from services.platform.outbox import Envelope
from services.platform.relay import OutboxRelay
from tests import busapp


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _hang() -> None:
    # Block the whole process (the event loop included) until SIGKILL arrives.
    time.sleep(3600)


class _RelayThatHangsBeforeMarking(OutboxRelay):
    async def _publish(self, batches: dict[str, list[Envelope]]) -> None:
        await super()._publish(batches)
        _say(f"PUBLISHED {sum(len(batch) for batch in batches.values())}")
        _hang()


async def consume(args: argparse.Namespace) -> None:
    def after_commit() -> None:
        _say("COMMITTED")
        _hang()

    async with busapp.database(args.database_url) as db:
        bus = Bus.from_url(args.redis_url)
        consumer = Consumer(
            db,
            bus,
            group=args.group,
            streams=[stream_name(args.context)],
            handlers={busapp.EVENT_TYPE: busapp.effect_handler(args.group)},
            consumer_name=args.name,
            block_ms=100,
            after_commit=after_commit,
        )
        await consumer.start()
        _say("READY")
        await asyncio.sleep(3600)


async def relay(args: argparse.Namespace) -> None:
    async with busapp.database(args.database_url) as db:
        bus = Bus.from_url(args.redis_url)
        _say("READY")
        await _RelayThatHangsBeforeMarking(db, bus).drain()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.busapp.worker")
    commands = parser.add_subparsers(dest="command", required=True)
    consumer = commands.add_parser("consume")
    relay_ = commands.add_parser("relay")
    for command in (consumer, relay_):
        command.add_argument("database_url")
        command.add_argument("redis_url")
    consumer.add_argument("context")
    consumer.add_argument("group")
    consumer.add_argument("name")
    args = parser.parse_args()
    asyncio.run(consume(args) if args.command == "consume" else relay(args))


if __name__ == "__main__":
    main()
