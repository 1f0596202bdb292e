"""``python -m services.mesh up [options]``."""

from __future__ import annotations

import sys

from services.mesh import up


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "up":
        print("usage: python -m services.mesh up [--help]", file=sys.stderr)
        return 2
    return up.main(argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
