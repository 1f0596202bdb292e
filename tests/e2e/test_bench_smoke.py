"""``scripts/bench --smoke`` end to end: it starts what it measures, loads it with tiny
loads, stops everything, and writes the report and the plot with every section.

No timing is asserted: the smoke run proves the harness works, not how fast anything is.
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from tests.support.databases import POSTGRES_ENV

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = (
    "## Results against the targets",
    "## Machine and versions",
    "## Method",
    "## 1. Platform cost: bare server vs the full service (GetProduct)",
    "## 2. Edge cost: direct gRPC vs through Envoy (GetProduct)",
    "## 3. Order throughput: PlaceOrder → CONFIRMED",
    "## 4. Event bus: outbox commit → consumer effect",
    "## 5. Footprint: memory and cold start",
    "## Where the time goes",
)
TARGET_ROWS = (
    "Platform: full service / bare server, max throughput",
    "Edge (REST): added p50 at half load",
    "Edge (REST): added p99 at half load",
    "Edge (REST): Envoy CPU per 1,000 req/s",
    "Orders/s on SQLite",
    "Orders/s on PostgreSQL",
    "Bus: events/s, outbox commit → consumer effect",
    "Bus: lag p99 at",
    "RSS per idle service",
    "Whole mesh cold start to all SERVING",
)


@dataclass
class Smoke:
    returncode: int
    stdout: str
    stderr: str
    out: Path

    @property
    def report(self) -> str:
        return (self.out / "benchmarks.md").read_text()

    @property
    def work_dir(self) -> Path:
        found = re.search(r"benchmark \(smoke\) in (\S+);", self.stderr)
        assert found, self.stderr
        return Path(found.group(1))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Smoke:
    out = tmp_path_factory.mktemp("bench")
    argv = [str(ROOT / "scripts" / "bench"), "--smoke", "--out", str(out)]
    postgres = os.environ.get(POSTGRES_ENV)
    if postgres:
        argv += ["--postgres-url", postgres]
    done = subprocess.run(
        argv,
        cwd=ROOT,
        env={**os.environ, "VENV": sys.prefix},
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    return Smoke(done.returncode, done.stdout, done.stderr, out)


def _png_header_and_pixels(path: Path) -> tuple[int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


def test_the_smoke_run_succeeds_and_prints_every_target(smoke: Smoke) -> None:
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    for row in ("Platform:", "Orders/s on SQLite", "Bus: events/s", "cold start"):
        assert row in smoke.stdout


def test_the_report_has_every_section(smoke: Smoke) -> None:
    report = smoke.report
    for heading in SECTIONS:
        assert heading in report, heading
    assert "**Smoke run**" in report


def test_every_target_sits_beside_a_measured_figure(smoke: Smoke) -> None:
    table = smoke.report.split("## Results against the targets")[1].split("\n## ")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    for name in TARGET_ROWS:
        matching = [row for row in rows if name in row]
        assert matching, name
        _figure, _measured, target, mark = (cell.strip() for cell in matching[0].split("|")[1:5])
        assert target.startswith(("≥", "≤")), matching[0]
        assert mark in {"✓", "✗", "—"}, matching[0]


def test_the_sqlite_order_run_completes_orders(smoke: Smoke) -> None:
    sqlite = smoke.report.split("### SQLite")[1].split("###")[0]
    issued = [int(m) for m in re.findall(r"\| \d+/(\d+) \|", sqlite)]
    assert sum(issued) > 0
    assert "CPU per order" in sqlite


def test_postgresql_is_measured_when_the_tests_have_one(smoke: Smoke) -> None:
    postgres = smoke.report.split("### PostgreSQL")[1].split("## 4.")[0]
    if os.environ.get(POSTGRES_ENV):
        assert "| offered |" in postgres
        assert "postgres" in postgres  # its server processes' CPU per order
    else:
        assert "Not measured" in postgres


def test_the_bus_delivers_every_event_it_committed(smoke: Smoke) -> None:
    assert "| events lost (committed, never effected) | 0 |" in smoke.report


def test_the_plot_is_a_png_with_a_drawing_on_it(smoke: Smoke) -> None:
    width, height, pixels = _png_header_and_pixels(smoke.out / "benchmarks-latency.png")
    assert width >= 600
    assert height >= 300
    stride = 1 + 3 * width  # a filter byte, then RGB
    assert len(pixels) == height * stride
    colours = {
        pixels[y * stride + 1 + 3 * x : y * stride + 4 + 3 * x]
        for y in range(0, height, 3)
        for x in range(0, width, 3)
    }
    assert len(colours) >= 3  # background, ink, at least one series


def test_everything_it_started_is_stopped_and_cleaned_up(smoke: Smoke) -> None:
    work = str(smoke.work_dir)
    assert not Path(work).exists()
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if work in command:
            leftovers.append(command)
    assert leftovers == []
