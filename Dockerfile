# The chargeback image of docker-compose.yml: the stream worker, the schema commands (db ...) and
# finance's billing commands. Built from the production lock (requirements-prod.lock: no test or
# lint tools), the project installed as a wheel (not editable), run as an unprivileged user that
# owns its data, spool and export folders.
#
#   docker build -t chargeback .
#   docker run --rm chargeback chargeback --help

FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY chargeback chargeback
COPY collectors collectors
COPY streams streams
COPY billing_jobs billing_jobs
COPY warehouse warehouse
COPY chargeback_cli chargeback_cli
COPY demo demo
COPY devstack devstack
COPY sql sql
RUN pip install --no-cache-dir --disable-pip-version-check "setuptools>=68" wheel \
 && pip wheel --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation \
      --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements-prod.lock /tmp/requirements-prod.lock
RUN pip install --no-cache-dir -r /tmp/requirements-prod.lock && rm /tmp/requirements-prod.lock
COPY --from=wheel /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

# An unprivileged user (no login, no home elsewhere) that owns exactly the folders it writes.
RUN groupadd --system --gid 10001 chargeback \
 && useradd --system --uid 10001 --gid chargeback --home-dir /var/lib/chargeback \
      --shell /usr/sbin/nologin chargeback \
 && install -d -o chargeback -g chargeback -m 0750 \
      /var/lib/chargeback /var/lib/chargeback/data /var/lib/chargeback/out /var/lib/chargeback/spool
WORKDIR /var/lib/chargeback
USER chargeback:chargeback

# Container defaults: embedded chDB under the data folder (compose points it at a server), the
# spool beside it, metrics and health on all interfaces of the container for scraping, JSON logs.
ENV CHARGEBACK_CLICKHOUSE_URL=chdb:/var/lib/chargeback/data/chdb \
    CHARGEBACK_COLLECTOR_SPOOL_DIR=/var/lib/chargeback/spool \
    CHARGEBACK_WORKER_METRICS_HOST=0.0.0.0 \
    CHARGEBACK_WORKER_METRICS_PORT=9108 \
    CHARGEBACK_WORKER_LOG_FORMAT=json
VOLUME ["/var/lib/chargeback/data", "/var/lib/chargeback/out", "/var/lib/chargeback/spool"]
EXPOSE 9108

# Ready = the worker joined its consumer group and ClickHouse answers (GET /health/ready).
HEALTHCHECK --interval=15s --timeout=10s --start-period=90s --retries=4 \
  CMD ["chargeback", "stream", "health"]

CMD ["chargeback", "stream", "worker"]
