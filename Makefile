# The two commands of the README, and helpers.
.PHONY: setup run test unit lint bench

setup:            ## build the app, Rasa and vLLM environments and the base model (idempotent)
	bash scripts/setup.sh

run: setup        ## set up, then start Rasa, vLLM and the assistant (Ctrl-C stops all)
	.venv/bin/assistant up

# ruff, the import contracts (layers), the unit tier (no servers; its store tests on SQLite and PostgreSQL), the
# stack tier on SQLite (real Rasa, vLLM, Chromium), then what depends on the database again with the stack on
# PostgreSQL.
test: setup       ## set up (Chromium for the widget tests, PostgreSQL on loopback), then run every tier
	bash scripts/install_chromium.sh
	.venv/bin/ruff check .
	.venv/bin/lint-imports --no-cache
	url="$$(bash scripts/postgres.sh)" && export ASSISTANT_TEST_POSTGRES_URL="$$url" \
	  && .venv/bin/pytest tests/unit \
	  && .venv/bin/pytest --durations=12 tests/stack \
	  && ASSISTANT_TEST_STACK_DATABASE=postgres .venv/bin/pytest --durations=12 tests/stack

unit:             ## the fast tier only: no servers, no network (about a minute)
	.venv/bin/lint-imports --no-cache && .venv/bin/pytest tests/unit

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/lint-imports --no-cache

bench: setup      ## latency and throughput vs the raw components (not a test)
	.venv/bin/python bench/turn_latency.py
