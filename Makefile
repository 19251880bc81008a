# The two commands of the README's set-up:  make app  /  make test
# Both create .venv when it is missing and (re)install when requirements change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 7860
PYTEST_ARGS ?=

.PHONY: help install app test test-fast clean

help:
	@echo "make app        install if needed, then launch the correction (super-resolution) app on http://$(HOST):$(PORT)"
	@echo "make test       install if needed (with dev extras), then run the whole test suite"
	@echo "make test-fast  the suite without tests marked slow"
	@echo "make clean      remove .venv and caches"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt -e '.[dev]'
	@touch $@

install: $(STAMP)

app: $(STAMP)
	GRADIO_SERVER_NAME=$(HOST) GRADIO_SERVER_PORT=$(PORT) $(BIN)/python correct_app.py

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
