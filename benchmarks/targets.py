"""The figures each benchmark is judged against (issue 11's P1-P7)."""

#: P1: the full catalog service's GetProduct throughput over the raw-sqlite3 floor's.
P1_RATIO = 0.80
#: P3: Envoy's CPU per 1,000 req/s (Istio publishes 0.20 vCPU for its sidecar) and the
#: latency it adds at half load.
EDGE_CORES_PER_K = 0.25
EDGE_ADDED_P99_MS = 2.0
#: P4: authenticated REST reads through the edge against ../shared/peers/node-express.
P4_THROUGHPUT_TIMES = 3.0
P4_P99_FRACTION = 1 / 3
#: P5: orders (32 shoppers watching their orders to CONFIRMED).
ORDERS_SQLITE = 150.0
ORDERS_SQLITE_GOAL = 300.0
ORDERS_POSTGRES = 100.0
ORDERS_HALF_LOAD_P99_MS = 100.0
ORDERS_CPU_MS = 12.0
#: P6: the bus, embedded Redis at appendfsync always.
BUS_EVENTS = 5000.0
BUS_LAG_P99_MS = 20.0
#: P7: footprint.
IDLE_RSS_MB = 70.0
COLD_START_S = 3.0
