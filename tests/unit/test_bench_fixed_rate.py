"""The bench's fixed-rate h2load runs (benchmarks/fixed_rate.py): the schedule, the
command line and the reading of h2load's per-request log."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from benchmarks import fixed_rate
from benchmarks.fixed_rate import Schedule


@pytest.mark.parametrize("rate", [100, 243, 500, 584, 1000, 1169])
def test_a_schedule_keeps_the_rate_asked_for_and_spreads_its_connections_evenly(
    rate: int,
) -> None:
    schedule = Schedule.near(rate)
    assert abs(schedule.rate - rate) <= 0.015 * rate
    assert 8 <= schedule.connections <= 32
    assert (schedule.connections - 1) * schedule.period_ms <= 200  # opened during the warm-up
    interval_ms = 1000 / schedule.per_connection
    phases = sorted(i * schedule.period_ms % interval_ms for i in range(schedule.connections))
    gaps = [b - a for a, b in itertools.pairwise(phases)]
    gaps.append(phases[0] + interval_ms - phases[-1])
    assert min(gaps) >= 0.9 * 1000 / schedule.rate  # no two requests close together
    assert schedule.connections * schedule.depth <= fixed_rate.IN_FLIGHT


def test_a_rate_below_eight_a_second_gets_one_request_a_second_on_each_connection() -> None:
    assert Schedule.near(5) == Schedule(5, 1, Schedule.near(5).period_ms)


def test_rest_runs_over_http1_and_grpc_posts_its_body_with_the_grpc_headers() -> None:
    schedule = Schedule(8, 73, 12)
    log = Path("/tmp/log.tsv")
    rest = fixed_rate.command(fixed_rate.rest_get("127.0.0.1:8080", "/v1/x"), schedule, 6.5, log)
    assert rest[:2] == ["h2load", "--h1"]
    assert "-d" not in rest
    assert rest[-1] == "http://127.0.0.1:8080/v1/x"
    body = Path("/tmp/getproduct.grpc")
    grpc = fixed_rate.command(fixed_rate.grpc_get_product("127.0.0.1:9", body), schedule, 6.5, log)
    assert "--h1" not in grpc
    assert grpc[grpc.index("-d") + 1] == str(body)
    assert "content-type: application/grpc" in grpc
    for argv in (rest, grpc):
        assert argv[argv.index("--rps") + 1] == "73"
        assert argv[argv.index("--rate-period") + 1] == "12ms"
        assert argv[argv.index("-n") + 1] == str(8 * 475)  # 73/s for 6.5 s, each
        assert argv[argv.index("--log-file") + 1] == str(log)


def test_the_log_counts_only_the_requests_that_started_inside_the_window() -> None:
    lines = [
        "999\t200\t500",  # before the window
        "1000\t200\t1500",
        "1500\t-1\t20000",  # a failed stream
        "1800\t503\t900",
        "1999\t200\t2500",
        "2000\t200\t700",  # after it
        "",
    ]
    latencies, issued, failed = fixed_rate.read_log("\n".join(lines), 1000, 2000)
    assert latencies == [1500, 2500]
    assert issued == 4
    assert failed == 2


def test_the_body_bytes_are_read_from_the_summary() -> None:
    summary = (
        "requests: 320 total, 320 started, 320 done, 320 succeeded, 0 failed, 0 errored\n"
        "traffic: 68.62KB (70270) total, 1.99KB (2040) headers (space savings 94.75%), "
        "74.53KB (76320) data\n"
    )
    assert fixed_rate.data_bytes(summary) == 76320
    assert fixed_rate.data_bytes("no summary") is None
