# Two entry points for a fresh machine (see README.md):
#   make demo   - set up, then build the bundled examples to C, compile, run, compare
#   make test   - set up, then lint, type-check and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2 -m "not slow"

.PHONY: demo test lint typecheck pytest test-all bench tools clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The host C compiler the tests and the demo compile generated code with.
tools:
	@command -v gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc libc6-dev; }

demo: $(VENV)/.installed tools
	$(BIN)/python examples/demo.py

lint: $(VENV)/.installed
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed tools
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# Everything, including the tests marked slow.
test-all: PYTEST_ARGS = -n 2
test-all: test

bench: $(VENV)/.installed tools
	@command -v arm-none-eabi-gcc >/dev/null || { apt-get update -qq && apt-get install -y -qq gcc-arm-none-eabi; }
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
