"""The contracts work with buf alone on a fresh clone: no project script runs first.

The repository is cloned (``git clone`` of the committed HEAD) into a temporary folder and
buf runs there: ``buf lint``, ``buf build``, ``buf generate`` into a temporary folder and
``buf breaking --against '.git#branch=main'``. The google/api imports come from the
committed ``third_party/`` (written by ``scripts/generate``, drift-checked by
test_generated_code_is_current.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = Path(sys.prefix) / "bin" / "buf"
NODE_BIN = ROOT / "clients" / "node_modules" / ".bin"


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the committed tree, with a local ``main`` branch (buf breaking's base)."""
    target = tmp_path_factory.mktemp("clone") / "emporium"
    result = _run(["git", "clone", "--quiet", str(ROOT), str(target)], ROOT)
    assert result.returncode == 0, result.stderr
    has_main = _run(["git", "rev-parse", "--verify", "--quiet", "refs/heads/main"], target)
    if has_main.returncode != 0:
        # A clone of a feature branch: its ``main`` is where the branch left main (what the
        # branch must not break; main's later additions are not the branch's deletions).
        base = _run(["git", "merge-base", "HEAD", "origin/main"], target)
        if base.returncode != 0:
            pytest.skip(f"{ROOT} has no main branch to compare against")
        assert _run(["git", "branch", "main", base.stdout.strip()], target).returncode == 0
    return target


def _buf(clone: Path, *args: str, **env: str) -> str:
    result = _run([str(BUF), *args], clone, **env)
    assert result.returncode == 0, f"buf {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_clone_has_no_build_output(clone: Path) -> None:
    assert not (clone / "build").exists()
    assert (clone / "third_party" / "google" / "api" / "annotations.proto").is_file()


def test_buf_lint(clone: Path) -> None:
    _buf(clone, "lint")


def test_buf_build(clone: Path, tmp_path: Path) -> None:
    image = tmp_path / "image.binpb"
    _buf(clone, "build", "-o", str(image))
    assert image.stat().st_size > 0


def test_buf_breaking_against_main(clone: Path) -> None:
    _buf(clone, "breaking", "--against", ".git#branch=main")


def test_buf_generate_into_a_temporary_folder(clone: Path, tmp_path: Path) -> None:
    """buf.gen.yaml's plugins (Go and TypeScript) write a complete client elsewhere."""
    for plugin in ("protoc-gen-go", "protoc-gen-go-grpc"):
        if shutil.which(plugin) is None:
            pytest.skip(f"{plugin} not found: install the Debian package {plugin}")
    if not (NODE_BIN / "protoc-gen-es").exists():
        pytest.skip("protoc-gen-es not found: run `npm ci --prefix clients` (needs node and npm)")
    out = tmp_path / "out"
    _buf(clone, "generate", "-o", str(out), PATH=f"{NODE_BIN}:{os.environ['PATH']}")
    go = sorted(p.name for p in (out / "gen" / "go").rglob("*.go"))
    ts = sorted(p.name for p in (out / "gen" / "ts").rglob("*.ts"))
    assert "catalog_service.pb.go" in go
    assert "catalog_service_grpc.pb.go" in go
    assert "order_service_pb.ts" in ts
