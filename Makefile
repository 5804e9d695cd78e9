# doseprint: `make demo` and `make test` set everything up themselves on a fresh machine
# (Python 3.11 and make are all they need).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Peers the tests check doseprint against (OctoPrint's virtual printer, Klipper's host),
# kept out of doseprint's own environment: tests/peers/requirements.txt.
PEERS  := .venv-peers
PEERS_STAMP := $(PEERS)/.installed

.PHONY: demo test lint typecheck check bench clean peers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(PEERS_STAMP): tests/peers/requirements.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet -r tests/peers/requirements.txt
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP) $(PEERS_STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy
	bash scripts/ensure-chromium.sh
	bash scripts/pg-test-server.sh run -- $(BIN)/python -m pytest -q -n auto --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) $(PEERS) build dist .pytest_cache .mypy_cache .ruff_cache demo-out
