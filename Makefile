# Two entry points do all the set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test test-fast lint bench system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-serve: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@ $(VENV)/.installed-serve

serve: $(VENV)/.installed-serve
	$(BIN)/whisper-live-server $(ARGS)

system-deps:
	bash scripts/install-system-deps.sh

test: $(VENV)/.installed-test system-deps
	$(BIN)/ruff check whisper_live tests scripts
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

# Only the unit tests: no Whisper model, no server (see tests/conftest.py); well under 2 min.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m unit tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check whisper_live tests scripts
