# syntax=docker/dockerfile:1
# One image for every Emporium service: `python -m services <name>` (or EMPORIUM_SERVICE).
# It runs as an unprivileged user with a read-only root filesystem; the only writable path
# is /tmp (an emptyDir in Kubernetes; DATA_DIR=/tmp/emporium). Build and push: docs/deploy.md.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: compilers only here, to build any wheel without a binary for this platform ----
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/emporium
WORKDIR /src
COPY pyproject.toml ./
COPY gen/python gen/python
COPY gen/sqlite gen/sqlite
COPY services services
# Byte-compile at build time: the root filesystem is read-only at run time.
RUN /opt/emporium/bin/pip install . \
 && /opt/emporium/bin/python -m compileall -q /opt/emporium/lib

# ---- runtime: the interpreter, the virtualenv, nothing else ----
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 emporium \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
      --shell /usr/sbin/nologin emporium
COPY --from=build /opt/emporium /opt/emporium
ENV PATH=/opt/emporium/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    GRPC_HOST=0.0.0.0 \
    GRPC_PORT=50051 \
    METRICS_PORT=9090 \
    DATA_DIR=/tmp/emporium
USER 10001:10001
EXPOSE 50051 9090
# grpc.health.v1 Check on the service's own port: healthy only when it answers SERVING.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, grpc; from grpc_health.v1 import health_pb2 as h, health_pb2_grpc as g; c = grpc.insecure_channel('127.0.0.1:' + os.environ.get('GRPC_PORT', '50051')); r = g.HealthStub(c).Check(h.HealthCheckRequest(), timeout=3); sys.exit(r.status != h.HealthCheckResponse.SERVING)"]
ENTRYPOINT ["python", "-m", "services"]
