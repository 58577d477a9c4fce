# The two commands: `make compare` (the main job) and `make test` (the suite).
# Each does all set-up on a fresh machine: venv, Python packages, RabbitMQ from
# apt, Kafka jars from Maven Central; the brokers are started by the kit itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup compare test up down status clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/queuekit provision

compare: setup
	$(BIN)/queuekit up
	$(BIN)/queuekit ping

test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

up down status: $(STAMP)
	$(BIN)/queuekit $@

clean:
	-$(BIN)/queuekit down
	rm -rf $(VENV) reports
