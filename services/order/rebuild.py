"""``python -m services.order.rebuild``: rebuild the order views (the read model) from the
order events. Reads ``DATABASE_URL`` (and ``DATA_DIR``) like the service; safe to run while
the service runs: the rebuild is one transaction."""

from __future__ import annotations

import asyncio
import sys

from services.order.main import MIGRATIONS
from services.order.projector import rebuild_views
from services.platform.config import load_settings
from services.platform.db import Database


async def rebuild(database_url: str) -> int:
    """Empties and refills ``order_views`` from ``order_events``; returns the order count."""
    db = Database(database_url, MIGRATIONS)
    try:
        await db.migrate()
        async with db.write() as tx:
            return await rebuild_views(tx)
    finally:
        await db.dispose()


def main() -> int:
    settings = load_settings("order")
    count = asyncio.run(rebuild(settings.database_url))
    print(f"rebuilt the views of {count} orders", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
