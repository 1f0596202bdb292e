"""``python -m services <name>``: run one Emporium service (or ``$EMPORIUM_SERVICE``)."""

from __future__ import annotations

import importlib
import os
import sys

from services.platform.config import SERVICES


def main(argv: list[str]) -> int:
    name = argv[1] if len(argv) > 1 else os.environ.get("EMPORIUM_SERVICE", "")
    if name not in SERVICES:
        print(f"usage: python -m services {{{','.join(SERVICES)}}}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"services.{name}.main")
    module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
