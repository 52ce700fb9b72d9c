# The set-up contract: `make demo` and `make test` each create .venv and
# install the project when needed (idempotent: a stamp file records the
# pyproject.toml it was installed from), then do their job.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-slow test-all bench bench-quick lint protos check-protos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/pets demo

test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

test-all: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	@mkdir -p benchmarks/results
	$(PY) -m pytest benchmarks -q --benchmark-only --benchmark-json=benchmarks/results/latest.json $(PYTEST_ARGS)
	$(PY) -m benchmarks.report benchmarks/results/latest.json

bench-quick: $(STAMP)
	$(VENV)/bin/pets bench --quick --json

# ruff, the layer contracts (import-linter) and the type checker (mypy). Both of the
# latter read build/lint/pets, the installed package shape (tools/linktree.py).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) tools/linktree.py build/lint
	cd build/lint && ../../$(VENV)/bin/lint-imports ../../pyproject.toml
	cd build/lint && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml --cache-dir ../../.mypy_cache

protos: $(STAMP)
	$(PY) tools/protogen.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis benchmarks/results
