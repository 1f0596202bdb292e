"""``python -m services.edge render|check``: write, or verify, the committed edge configs."""

from __future__ import annotations

import sys

from services.edge.contract import ROOT
from services.edge.render import committed


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command not in ("render", "check"):
        print("usage: python -m services.edge {render|check}", file=sys.stderr)
        return 2
    stale = []
    for path, content in committed().items():
        if command == "render":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            print(f"wrote {path.relative_to(ROOT)}")
        elif not path.exists() or path.read_bytes() != content:
            stale.append(str(path.relative_to(ROOT)))
    if stale:
        print(
            f"out of date: {', '.join(stale)}; run: python -m services.edge render", file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
