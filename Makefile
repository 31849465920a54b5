# `make demo` runs the chat, `make test` runs every check, `make bench` the benchmark (BENCHMARKS.md),
# `make screenshot` retakes docs/screenshot.png, `make cluster` runs replicas behind nginx
# (CLUSTER_ARGS='--replicas 3'), `make test-cluster` their tests (tests/cluster: not in `make test`).
# Each sets up its virtual environment first:
# .venv holds only what the app needs (as on a Space), .venv-dev adds the test and benchmark tools
# (with matplotlib installed, Gradio imports it on the first event: a stall a demo should not have).
PYTHON ?= python3
VENV := .venv
DEV_VENV := .venv-dev
BIN := $(VENV)/bin
DEV := $(DEV_VENV)/bin

.PHONY: demo test test-cluster lint bench cluster screenshot clean

demo: $(VENV)/.ready
	$(BIN)/python app.py

test: $(DEV_VENV)/.ready lint
	$(DEV)/python -m pytest

test-cluster: $(DEV_VENV)/.ready
	$(DEV)/python -m pytest tests/cluster

cluster: $(VENV)/.ready
	$(BIN)/python -m cluster $(CLUSTER_ARGS)

bench: $(DEV_VENV)/.ready
	$(DEV)/python -m bench.run $(BENCH_ARGS)

lint: $(DEV_VENV)/.ready
	$(DEV)/ruff check .
	$(DEV)/ruff format --check .

screenshot: $(DEV_VENV)/.ready
	rm -f test-artifacts/new-visitor-desktop.png
	CI=true $(DEV)/python -m pytest -q tests/browser/test_new_visitor.py -k desktop
	cp test-artifacts/new-visitor-desktop.png docs/screenshot.png

$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV)/python -m pip install --quiet --upgrade pip
	$(DEV)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) $(DEV_VENV) .pytest_cache .ruff_cache *.egg-info test-artifacts
