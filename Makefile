# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAGE ?= dev
PACKAGE_DIR := build/package

.PHONY: run test lint typecheck unit integration e2e browser package bench clean

# Everything into .venv; redone when the requirement files change.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet 'pip<26.3'
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## run: start the local stack on http://127.0.0.1:8000 (Ctrl-C stops it)
run: $(VENV)/.installed
	$(BIN)/python -m local.stack

## test: lint, type-check, and run every test (the browser test included)
test: lint typecheck browser
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check app.py chalicelib tests local bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy app.py chalicelib

# Debian's Chromium for the end-to-end test (Playwright drives it; it never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser test"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
	  || { echo "could not install chromium: run 'apt-get install chromium' as root"; exit 1; }; }

## package: the deployable CloudFormation package of a stage (STAGE=dev|prod), linted
package: $(VENV)/.installed
	$(BIN)/python -m chalicelib.cli check-config --stage $(STAGE)
	rm -rf $(PACKAGE_DIR)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) --merge-template .chalice/resources.json $(PACKAGE_DIR)
	$(BIN)/cfn-lint $(PACKAGE_DIR)/sam.json

## bench: print the intake, deadline-sweep and sheet-sync benchmark figures
bench: $(VENV)/.installed
	$(BIN)/python bench/bench_intake.py
	$(BIN)/python bench/bench_sweep.py
	$(BIN)/python bench/bench_sheets.py

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
