# Two entry points do all the set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test test-fast lint bench system-deps

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/whisper-live-server $(ARGS)

system-deps:
	bash scripts/install-system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/ruff check whisper_live tests scripts
	$(BIN)/python -m pytest -q -ra $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check whisper_live tests scripts
