# Yishao: the two commands of the README, and what they stand on.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.yishao-installed
export YISHAO_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test setup redis postgres lint typecheck pytest bench clean web

## run: set up, then serve and run the demo drill (scripts/run.sh starts Redis and PostgreSQL
## when none answers, and stops what it started)
run: setup
	@scripts/run.sh

## test: set up, make sure Redis and PostgreSQL answer, then ruff, the import contracts, mypy
## and pytest
test: setup redis postgres lint typecheck pytest

setup: $(STAMP) web

## web: the console, terminal and coordinator pages (npm ci + vite build), when sources changed
WEB_SOURCES := $(shell find web/src -type f 2>/dev/null) $(wildcard web/*.html) web/package.json \
	web/vite.config.ts web/tsconfig.json
web: web/dist/.built

web/node_modules/.installed: web/package-lock.json
	@scripts/ensure-tools.sh
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

web/dist/.built: web/node_modules/.installed $(WEB_SOURCES)
	cd web && npm run build --silent
	@touch $@

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev,sumo]'
	@scripts/ensure-tools.sh
	@touch $(STAMP)

redis:
	@scripts/ensure-redis.sh

postgres:
	@scripts/ensure-postgres.sh

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck:
	$(VENV)/bin/mypy

pytest:
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup redis
	$(PY) benchmarks/intake.py
	$(PY) benchmarks/routing.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache web/node_modules web/dist
