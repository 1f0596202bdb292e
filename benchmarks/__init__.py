"""The benchmark harness behind ``scripts/bench``: it starts what it measures, loads it,
stops everything and writes ``docs/benchmarks.md`` plus a latency-vs-throughput plot.

Sections: platform cost (bare vs full catalog server), edge cost (Envoy), order saga
throughput (SQLite and PostgreSQL), event bus (outbox → relay → consumer) and footprint
(memory, cold start). See docs/benchmarks.md for the method.
"""
