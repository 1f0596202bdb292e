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
    "## P1. Catalog GetProduct over direct gRPC: the full service vs its floor",
    "## P3. The edge's cost: Envoy CPU and added latency",
    "### What each part of the edge costs",
    "## P4. Authenticated REST read through the edge vs the Node/Express peer",
    "## P5. Orders: PlaceOrder → CONFIRMED over REST, 32 shoppers",
    "## P6. Event bus: outbox commit → consumer effect",
    "## P7. Footprint: idle memory and time to SERVING",
    "## Where the time goes",
)
TARGET_ROWS = (
    "P1 catalog GetProduct",
    "P3 Envoy CPU per 1,000 req/s (REST",
    "P3 Envoy CPU per 1,000 req/s (gRPC",
    "P3 edge's added p99 at half load (REST",
    "P4 GET /v1/users/{id} with JWT through the edge",
    "P5 orders confirmed/s on SQLite",
    "P5 CPU per order on SQLite",
    "P5 orders confirmed/s on PostgreSQL",
    "P6 bus events/s",
    "P6 bus lag p99 at",
    "P7 idle RSS per service",
    "P7 whole mesh SERVING after start",
)
#: Beside each figure, the floor or peer measured in the same run.
FLOORS = (
    "full catalog service",
    "floor: bare grpc.aio + raw sqlite3",
    "floor: bare grpc.aio, constant answer",
    "full service, direct gRPC",
    "REST/JSON through Envoy",
    "gRPC through Envoy",
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


def _png_header_and_pixels(path: Path) -> tuple[int, int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8
    channels = {2: 3, 6: 4}[colour]
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    return width, height, channels, zlib.decompress(b"".join(chunks))


def test_the_smoke_run_succeeds_and_prints_every_target(smoke: Smoke) -> None:
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    for row in ("P1 ", "P3 ", "P4 ", "P5 ", "P6 ", "P7 "):
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


def test_p1_and_p3_measure_the_floor_and_the_direct_path_in_the_same_run(smoke: Smoke) -> None:
    report = smoke.report
    for label in FLOORS:
        assert f"| {label} |" in report, label
    p1 = report.split("## P1.")[1].split("\n## ")[0]
    assert "Ratio full / raw-sqlite3 floor" in p1
    experiments = report.split("### What each part of the edge costs")[1].split("\n## ")[0]
    for knob in ("traceSamplingPercent 100", "access log off", "health checks off"):
        assert knob in experiments, knob


def test_p4_names_the_peer_or_why_it_did_not_run(smoke: Smoke) -> None:
    p4 = smoke.report.split("## P4.")[1].split("\n## ")[0]
    assert "| Emporium: Envoy → identity |" in p4
    assert "node-express" in p4
    assert "| node-express: gateway → user service |" in p4 or "The peer did not run" in p4


def test_the_sqlite_order_run_places_orders_and_counts_cpu_per_process(smoke: Smoke) -> None:
    sqlite = smoke.report.split("### SQLite")[1].split("###")[0]
    issued = [int(m) for m in re.findall(r"\| \d+/(\d+) \|", sqlite)]
    assert sum(issued) > 0
    assert "CPU per order" in sqlite
    for process in ("order", "envoy", "redis"):
        assert f"| {process} |" in sqlite, process


def test_postgresql_is_measured_when_the_tests_have_one(smoke: Smoke) -> None:
    postgres = smoke.report.split("### PostgreSQL")[1].split("## P6.")[0]
    if os.environ.get(POSTGRES_ENV):
        assert "shoppers (closed loop)" in postgres
        assert "| postgres |" in postgres  # its server processes' CPU per order
    else:
        assert "Not measured" in postgres


def test_the_bus_delivers_every_event_it_committed(smoke: Smoke) -> None:
    assert "| runs where an effect never arrived | 0 |" in smoke.report


def test_the_plot_is_a_png_with_a_drawing_on_it(smoke: Smoke) -> None:
    width, height, channels, pixels = _png_header_and_pixels(smoke.out / "benchmarks-latency.png")
    assert width >= 600
    assert height >= 300
    stride = 1 + channels * width  # a filter byte, then the pixels
    assert len(pixels) == height * stride
    rows = [pixels[y * stride + 1 : (y + 1) * stride] for y in range(0, height, 3)]
    colours = {row[x : x + channels] for row in rows for x in range(0, len(row), 3 * channels)}
    assert len(colours) >= 3  # background, ink, at least one series


def test_everything_it_started_is_stopped_and_cleaned_up(smoke: Smoke) -> None:
    work = str(smoke.work_dir)
    assert not Path(work).exists()
    leftovers = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if work in command or "emporium-peer-" in command:
            leftovers.append(command)
    assert leftovers == []
