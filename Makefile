# runclub-spiders: `make demo` runs the main job offline against the simulator,
# `make test` runs the whole suite (lint included). Both build .venv from requirements.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test test-quick lint simulator bench clean

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(BIN)/scrapy demo

# Three workers on two cores: each crawl test runs the simulator and Scrapy in one process
# (one core), but a sixth of the suite's time is tests waiting (Retry-After, pacing, timeouts,
# subprocess start-up) with their core idle. Measured: 313 s with two workers, 279 s with three.
PYTEST_WORKERS ?= 3

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

test-quick: $(VENV)/.installed
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check .

# Benchmarks (not part of `make test`): bench.crawl about 10 minutes, bench.days (one crawl
# per virtual day of quota, nine scenarios) much longer; both append to BENCHMARKS.md.
bench: $(VENV)/.installed
	$(BIN)/python -m bench.crawl --out BENCHMARKS.md
	$(BIN)/python -m bench.days --out BENCHMARKS.md

simulator: $(VENV)/.installed
	$(BIN)/scrapy simulator --port 8765

clean:
	rm -rf $(VENV) .ci-venv .pytest_cache .ruff_cache
