"""The committed Go and TypeScript clients (gen/go, gen/ts) match the protos, and they and
the client programs compile: `tsc --noEmit` and `go vet` + `go build`.

The plugins and toolchains come from Debian (protoc-gen-go, protoc-gen-go-grpc, golang-go,
golang-google-grpc-dev, golang-google-protobuf-dev) and npm (clients/package-lock.json);
without them these tests skip and name what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"
NODE_BIN = CLIENTS / "node_modules" / ".bin"
#: Files in gen/ts written by hand, not by buf.
HAND_WRITTEN = {"gen/ts/package.json"}


def _require_plugins() -> None:
    for plugin in ("protoc-gen-go", "protoc-gen-go-grpc"):
        if shutil.which(plugin) is None:
            pytest.skip(f"{plugin} not found: install the Debian package {plugin}")
    if shutil.which("node") is None:
        pytest.skip("node not found: install Node.js 20 (Debian package nodejs) and npm")
    assert (NODE_BIN / "protoc-gen-es").exists(), (
        "protoc-gen-es is missing: scripts/test installs clients/node_modules (npm ci)"
    )


def _tree(gen: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for sub in ("go", "ts"):
        for path in sorted((gen / sub).rglob("*")):
            if path.is_file():
                files["gen/" + path.relative_to(gen).as_posix()] = path.read_bytes()
    return files


def test_buf_generate_reproduces_the_committed_go_and_typescript(tmp_path: Path) -> None:
    _require_plugins()
    out = tmp_path / "gen"
    env = {**os.environ, "GEN_OUT": str(out), "VENV": sys.prefix, "PYTHON": sys.executable}
    result = subprocess.run(
        [str(ROOT / "scripts" / "generate")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"scripts/generate failed:\n{result.stdout}\n{result.stderr}"

    committed = {k: v for k, v in _tree(ROOT / "gen").items() if k not in HAND_WRITTEN}
    fresh = _tree(out)
    assert fresh, f"scripts/generate made no client code:\n{result.stderr}"
    differing = sorted(
        name for name in committed.keys() | fresh.keys() if committed.get(name) != fresh.get(name)
    )
    assert not differing, (
        "gen/go or gen/ts is stale; run scripts/generate and commit. Differing files "
        "(missing on one side or different bytes):\n  " + "\n  ".join(differing)
    )


def test_every_proto_has_its_go_and_typescript_code() -> None:
    protos = sorted(p.relative_to(ROOT / "protos") for p in (ROOT / "protos").rglob("*.proto"))
    for proto in protos:
        stem = proto.with_suffix("").as_posix()
        assert (ROOT / "gen" / "ts" / f"{stem}_pb.ts").is_file(), stem
        assert (ROOT / "gen" / "go" / f"{stem}.pb.go").is_file(), stem
        if stem.endswith("_service"):
            assert (ROOT / "gen" / "go" / f"{stem}_grpc.pb.go").is_file(), stem


def test_the_typescript_runtime_is_the_generators_version() -> None:
    """protobuf-es code needs the runtime of the plugin's version (or a newer minor)."""
    header = (ROOT / "gen/ts/emporium/common/v1/money_pb.ts").read_text().splitlines()[0]
    match = re.search(r"protoc-gen-es v(\S+)", header)
    assert match, header
    generator = match.group(1)
    lock = json.loads((CLIENTS / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@bufbuild/protoc-gen-es"]["version"] == generator
    assert lock["node_modules/@bufbuild/protobuf"]["version"] == generator
    peer = json.loads((ROOT / "gen/ts/package.json").read_text())["peerDependencies"]
    assert peer["@bufbuild/protobuf"] == f"^{generator}"


def test_the_clients_and_the_generated_typescript_type_check() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found: install Node.js 20 (Debian package nodejs) and npm")
    tsc = CLIENTS / "node_modules" / "typescript" / "bin" / "tsc"
    assert tsc.exists(), (
        "clients/node_modules is missing: scripts/test installs it (npm ci --prefix clients)"
    )
    result = subprocess.run(
        [node, str(tsc), "--noEmit", "-p", "tsconfig.json", "--listFilesOnly"],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    checked = result.stdout
    assert "node_modules/@emporium/api/emporium/order/v1/order_service_pb.ts" in checked
    assert "storefront/src/main.ts" in checked

    result = subprocess.run(
        [node, str(tsc), "--noEmit", "-p", "tsconfig.json"],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"tsc --noEmit failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.timeout(900)  # a first build compiles grpc-go from source
def test_the_generated_go_code_and_the_go_clients_vet_and_build(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        pytest.skip("go not found: install the Debian package golang-go")
    result = subprocess.run(
        [str(CLIENTS / "go" / "build")],
        env={**os.environ, "BIN_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    if result.returncode == 3:  # a Debian package is missing; the script names it
        pytest.skip(result.stderr.strip())
    assert result.returncode == 0, f"go vet / go build failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "stockcheck").is_file()
