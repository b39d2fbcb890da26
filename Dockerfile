# The chargeback image used by docker-compose.yml: the stream worker, migrations and finance's CLI.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY chargeback chargeback
COPY collectors collectors
COPY streams streams
COPY billing_jobs billing_jobs
COPY warehouse warehouse
COPY chargeback_cli chargeback_cli
COPY demo demo
COPY devstack devstack
COPY sql sql
RUN pip install --no-cache-dir -r requirements.lock && pip install --no-cache-dir --no-deps -e .
USER nobody
