"""``python -m services <name>``: run one Emporium service (or ``$EMPORIUM_SERVICE``).

``python -m services <name> dead-letters list|replay|discard [--id ID]`` manages the
dead letters of that service's consumer group instead (see docs/messaging.md).
"""

from __future__ import annotations

import importlib
import os
import sys

from services.platform.config import SERVICES


def main(argv: list[str]) -> int:
    name = argv[1] if len(argv) > 1 else os.environ.get("EMPORIUM_SERVICE", "")
    if name not in SERVICES:
        print(
            f"usage: python -m services {{{','.join(SERVICES)}}} "
            "[dead-letters list|replay|discard [--id ID]]",
            file=sys.stderr,
        )
        return 2
    if len(argv) > 2 and argv[2] == "dead-letters":
        from services.platform.bus import command

        return command.main(name, argv[3:])
    module = importlib.import_module(f"services.{name}.main")
    module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
