# The two commands of the README's set-up:  make app  /  make test
# Both create .venv when it is missing and (re)install when requirements change.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 7860
PYTEST_ARGS ?=
# Optional extras `make` installs with the package (pyproject.toml [project.optional-dependencies]).
EXTRAS ?= dev,onnx,ray
# The browser tests (tests/e2e/test_browser.py) drive Debian's Chromium through Playwright; Playwright's
# own browser download does not work here. `make test` installs the two packages when missing.
CHROMIUM := /usr/bin/chromium
BROWSER_PACKAGES := chromium chromium-driver

.PHONY: help install browser app detect-app test test-fast clean

help:
	@echo "make app        install if needed, then launch the correction app (restore / enhance) on http://$(HOST):$(PORT)"
	@echo "make detect-app install if needed, then launch the pixelation-detection app on http://$(HOST):$(PORT)"
	@echo "make test       install if needed (with dev extras), then run the whole test suite"
	@echo "make test-fast  the suite without tests marked slow"
	@echo "make data       download and verify the training and benchmark data (SETS=\"benchmark\" for part of it)"
	@echo "make browser    install Debian's chromium and chromium-driver (for the browser tests) when missing"
	@echo "make clean      remove .venv and caches"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt -e '.[$(EXTRAS)]'
	@touch $@

install: $(STAMP)

# The research data for training and evaluation (not in the repository): downloaded at pinned commits,
# verified, into $DEEPCLARITY_DATA or the user data folder. Resumable: rerun after an interruption.
.PHONY: data
data: $(STAMP)
	$(BIN)/deepclarity data fetch $(SETS)

# Idempotent and silent when Chromium is there (or DEEPCLARITY_SKIP_BROWSER=1). apt-get update runs
# only when the package lists do not know chromium, or when an install from stale lists fails.
# Needs root (or sudo).
browser:
	@if [ "$$DEEPCLARITY_SKIP_BROWSER" != 1 ] && { [ ! -x $(CHROMIUM) ] || [ ! -x /usr/bin/chromedriver ]; }; then \
	  echo "Installing $(BROWSER_PACKAGES) (Debian packages) for the browser tests..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	  else echo "error: installing $(BROWSER_PACKAGES) needs root; or set DEEPCLARITY_SKIP_BROWSER=1" >&2; exit 1; fi; \
	  APT="$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get"; \
	  INSTALL="$$APT install -y -qq --no-install-recommends $(BROWSER_PACKAGES)"; \
	  apt-cache show chromium >/dev/null 2>&1 || $$APT update -qq || exit 1; \
	  $$INSTALL >/dev/null || { $$APT update -qq && $$INSTALL >/dev/null; } || exit 1; \
	  [ -x $(CHROMIUM) ] || { echo "error: $(CHROMIUM) is still missing after installing $(BROWSER_PACKAGES)" >&2; exit 1; }; \
	  $(CHROMIUM) --version 2>/dev/null; \
	fi

app: $(STAMP)
	GRADIO_SERVER_NAME=$(HOST) GRADIO_SERVER_PORT=$(PORT) $(BIN)/python correct_app.py

detect-app: $(STAMP)
	GRADIO_SERVER_NAME=$(HOST) GRADIO_SERVER_PORT=$(PORT) $(BIN)/python detect_app.py

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP) browser
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
