# The two commands of the README, and helpers.
.PHONY: setup run test lint bench

setup:            ## build the app, Rasa and vLLM environments and the base model (idempotent)
	bash scripts/setup.sh

run: setup        ## set up, then start Rasa, vLLM and the assistant (Ctrl-C stops all)
	.venv/bin/assistant up

test: setup       ## set up (Chromium for the widget tests, PostgreSQL on loopback), then run the whole suite on the real stack
	bash scripts/install_chromium.sh
	.venv/bin/ruff check .
	url="$$(bash scripts/postgres.sh)" && export ASSISTANT_TEST_POSTGRES_URL="$$url" \
	  && .venv/bin/pytest \
	  && ASSISTANT_TEST_STACK_DATABASE=postgres .venv/bin/pytest

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup      ## latency and throughput vs the raw components (not a test)
	.venv/bin/python bench/turn_latency.py
