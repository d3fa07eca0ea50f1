# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := .demo/telemetry

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever the project's metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

demo: $(VENV)/.installed
	rm -rf $(DEMO_DIR)
	$(BIN)/waza sample -o $(DEMO_DIR) --sessions 5000 --seed 7
	$(BIN)/waza analyze $(DEMO_DIR) -o .demo/analysis-report.json
	@echo "JSON report written to .demo/analysis-report.json"

# The Spark tests run Spark in local mode, which needs Java; the report's test needs Chromium;
# the export test sends traces to Arize Phoenix.
test: $(VENV)/.installed-test
	scripts/ensure-java
	scripts/ensure-chromium
	scripts/ensure-phoenix
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench

bench: $(VENV)/.installed
	scripts/ensure-java
	$(BIN)/python -m pip install --quiet -e '.[bench,spark]'
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/capture.py --sustained 60
	$(BIN)/python bench/analyze.py
	$(BIN)/python bench/serve.py --workers 2 --connections 16
	$(BIN)/python bench/frameworks.py
	$(BIN)/python bench/chaos.py --seconds 60
	$(BIN)/python -m bench.convert
	$(BIN)/python -m bench.report

clean:
	rm -rf $(VENV) .venv-phoenix .demo .pytest_cache
