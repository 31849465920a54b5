# `make demo` runs the chat, `make test` runs every check, `make bench` the benchmark (BENCHMARKS.md),
# `make screenshot` retakes docs/screenshot.png;
# all set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench screenshot clean

demo: $(VENV)/.ready
	$(BIN)/python app.py

test: $(VENV)/.ready lint
	$(BIN)/python -m pytest

bench: $(VENV)/.ready
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(VENV)/.ready
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

screenshot: $(VENV)/.ready
	rm -f test-artifacts/mid-stream.png
	CI=true $(BIN)/python -m pytest -q tests/browser -k grows_in_place
	cp test-artifacts/mid-stream.png docs/screenshot.png

$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info test-artifacts
