# The two commands a newcomer needs. Both install what they need first (scripts/bootstrap).
.PHONY: demo test lint bootstrap services-stop clean

demo:
	@scripts/bootstrap
	.venv/bin/chargeback demo run

test:
	@scripts/bootstrap --clickhouse-server
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/python -m pytest

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

services-stop:
	.venv/bin/python -m devstack stop

clean: services-stop
	rm -rf var out .devstack
