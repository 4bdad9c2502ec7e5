# Midashi: `make run` builds the index from corpus/ and serves the search page; `make test` runs the tests,
# `make check` their fast layer (no slow, livedoor or browser tests) for the edit loop, `make lint` ruff and mypy.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup run test check lint browser-deps relevance clean
LINTED := search web tests bench

$(BIN)/midashi: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/midashi

run: setup
	$(BIN)/midashi reindex --corpus corpus --index index
	$(BIN)/midashi serve --index index --host $(HOST) --port $(PORT)

# The browser tests drive Debian's Chromium; Japanese fonts make their screenshots readable.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! fc-list :lang=ja 2>/dev/null | grep -q .; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; \
	fi

# The whole suite, after the style and type checks: what CI runs (.ci/run).
test: setup browser-deps lint
	$(BIN)/python -m pytest

check: setup
	$(BIN)/python -m pytest -q -m "not slow and not livedoor and not browser"

# The style and type checks (their configuration is in pyproject.toml).
lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

relevance: setup
	$(BIN)/python bench/relevance.py

clean:
	rm -rf $(VENV) index/gen-* index/CURRENT index/CURRENT.tmp index/.reindex.lock test-artifacts
