"""No module in services/ over 350 lines, no function over 60 (scripts/check-sizes)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _check_sizes() -> ModuleType:
    path = ROOT / "scripts" / "check-sizes"
    loader = importlib.machinery.SourceFileLoader("check_sizes", str(path))
    spec = importlib.util.spec_from_loader("check_sizes", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_sizes"] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


def test_every_module_and_function_in_services_is_within_the_size_limits() -> None:
    offenders = _check_sizes().offenders(ROOT)
    assert not offenders, "\n".join(str(offender) for offender in offenders)


def test_the_checker_reports_a_long_function_and_a_long_module(tmp_path: Path) -> None:
    services = tmp_path / "services"
    services.mkdir()
    body = "".join(f"        x{i} = {i}\n" for i in range(70))
    header = "class Shop:\n    @staticmethod\n    def place() -> None:\n"
    (services / "long.py").write_text(header + body + "\n" * 300)
    (services / "short.py").write_text("def ok() -> int:\n    return 1\n")
    found = {(o.path, o.name): o.lines for o in _check_sizes().offenders(tmp_path)}
    assert found == {("services/long.py", "module"): 373, ("services/long.py", "Shop.place"): 72}
