# Sourced by the entry-point scripts: creates .venv when missing and installs the
# project into it, pinned by constraints.txt (the lock file: `pip freeze` of a working
# environment); reinstalls when either file changes.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON_BIN:-python3}"

ensure_venv() {
    local stamp="$VENV/.emporium-installed"
    local want
    want="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" | sha256sum | cut -c1-16)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        echo "emporium: creating $VENV" >&2
        "$PYTHON_BIN" -m venv "$VENV"
    fi
    if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        echo "emporium: installing the project into $VENV" >&2
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -c "$ROOT/constraints.txt" -e "$ROOT[dev]"
        echo "$want" > "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}
