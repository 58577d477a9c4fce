# The two commands: `make compare` (the main job) and `make test` (the suite).
# Each does all set-up on a fresh machine: venv, Python packages, RabbitMQ from
# apt, Kafka jars from Maven Central; the brokers are started by the kit itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup compare test bench browser kcat mmdebstrap up down status clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/queuekit provision

# The RabbitMQ columns run on 3.10 and on 4.x (a Debian root built with mmdebstrap on first use) where this
# machine can run 4.x; without mmdebstrap or root compare runs 3.10 alone and says why (COMPARE_ARGS=--rabbitmq 3.10: one).
compare: setup
	-@$(MAKE) --no-print-directory mmdebstrap
	$(BIN)/queuekit compare $(COMPARE_ARGS)

# The HTML report is checked in a real headless browser: Debian's chromium.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && echo "installing chromium with apt-get (first run only)…" \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || { echo "chromium is missing: run sudo apt-get install -y chromium" >&2; exit 1; }

# README "Run it yourself" sends with kcat (a Kafka producer nobody here wrote); its test runs it.
kcat:
	@command -v kcat >/dev/null || { [ "$$(id -u)" = 0 ] && echo "installing kcat with apt-get (first run only)…" \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kcat >/dev/null; } \
	  || { echo "kcat is missing: run sudo apt-get install -y kcat" >&2; exit 1; }

# RabbitMQ 4.x runs from a Debian root the kit builds with mmdebstrap (queuekit/brokers/rabbitmq_root.py);
# tests/brokers/test_rabbitmq4.py builds it on first use (about a minute, 240 MB in $$QUEUEKIT_HOME/cache).
mmdebstrap:
	@command -v mmdebstrap >/dev/null || { [ "$$(id -u)" = 0 ] && echo "installing mmdebstrap with apt-get (first run only)…" \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null; } \
	  || { echo "mmdebstrap is missing: run sudo apt-get install -y mmdebstrap" >&2; exit 1; }

# The suite: lint, import contracts and types (mypy over every package), then what shares the single-node brokers
# one test at a time (unit, brokers, e2e), then the per-stack suites and the 3-node clusters with one xdist worker
# per lane: each broker's cells, and the clusters on their own namespaces, side by side (tests/conftest.py
# broker_lane). PYTEST_ARGS reaches both runs. The brokers are started once for both runs and left running
# (`make down` stops them).
LANES = $(BIN)/python -c 'import sys; sys.path.insert(0, "tests"); from conftest import lane_count; print(lane_count())'
CLUSTER_TESTS = tests/brokers/test_cluster.py tests/brokers/test_faults.py tests/brokers/test_redis_cluster.py \
                tests/scenarios/test_cluster_faults.py
LANE_TESTS = tests/contract tests/stacks tests/scenarios/test_scenarios.py $(CLUSTER_TESTS)

test: setup browser kcat mmdebstrap
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/queuekit up
	$(BIN)/pytest --durations=15 $(addprefix --ignore=,$(LANE_TESTS)) $(PYTEST_ARGS)
	$(BIN)/pytest --durations=15 -n $$($(LANES)) $(LANE_TESTS) $(PYTEST_ARGS)

bench: setup
	$(BIN)/queuekit bench $(BENCH_ARGS)

up down status: $(STAMP)
	$(BIN)/queuekit $@

clean:
	-$(BIN)/queuekit down
	rm -rf $(VENV) reports
