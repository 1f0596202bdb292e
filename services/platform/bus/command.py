"""``python -m services <service> dead-letters list|replay|discard [--id ID ...]``.

Reads ``REDIS_URL`` (and the rest of the service's environment) like the service does;
the consumer group is the service's name (what :func:`~services.platform.publishing.consuming`
uses). ``list`` prints one line per dead letter (``--json``: one JSON object per line);
``replay`` puts them back on their source streams (all, or ``--id`` with what is held
behind each); ``discard`` deletes the ``--id`` ones for good. Exit status 0, or 1 with a
message when the command cannot be carried out. See docs/messaging.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from services.platform.bus.dead_letters import DeadLetter, DeadLetters, ReplayRefused
from services.platform.bus.streams import Bus
from services.platform.config import ConfigError, load_settings


def _parser(service: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m services {service} dead-letters",
        description=f"The dead letters of consumer group {service!r}.",
    )
    parser.add_argument("action", choices=["list", "replay", "discard"])
    parser.add_argument(
        "--id",
        dest="ids",
        action="append",
        default=[],
        metavar="ID",
        help="a dead letter's id (from list); repeat for several",
    )
    parser.add_argument("--group", help="another consumer group than the service's own")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def _line(letter: DeadLetter, as_json: bool) -> str:
    if as_json:
        return json.dumps(letter.as_dict(), sort_keys=True)
    return (
        f"{letter.id}  {letter.event_type}  aggregate={letter.aggregate_id or '-'}  "
        f"from={letter.source_stream}@{letter.source_id}  deliveries={letter.deliveries}  "
        f"reason={letter.reason}"
    )


async def _run(redis_url: str, group: str, args: argparse.Namespace) -> int:
    bus = Bus.from_url(redis_url)
    try:
        dead = DeadLetters(bus, group)
        if args.action == "list":
            letters = await dead.entries()
            wanted = set(args.ids)
            letters = [d for d in letters if not wanted or d.id in wanted]
            verb = ""
        elif args.action == "replay":
            letters = await dead.replay(args.ids or None)
            verb = "replayed "
        else:
            if not args.ids:
                print("discard needs --id (what to delete for good)", file=sys.stderr)
                return 1
            letters = await dead.discard(args.ids)
            verb = "discarded "
        for letter in letters:
            print(_line(letter, True) if args.json else verb + _line(letter, False))
        if not args.json:
            print(f"{len(letters)} dead letter(s) {verb.strip() or 'in'} group {group}")
        return 0
    except ReplayRefused as refused:
        print(f"not replayed: {refused}", file=sys.stderr)
        return 1
    finally:
        await bus.close()


def main(service: str, argv: Sequence[str]) -> int:
    args = _parser(service).parse_args(list(argv))
    try:
        settings = load_settings(service)
    except ConfigError as error:
        print(f"configuration: {error}", file=sys.stderr)
        return 1
    if not settings.redis_url:
        print("REDIS_URL is not set: there is no bus to read", file=sys.stderr)
        return 1
    return asyncio.run(_run(settings.redis_url, args.group or service, args))
