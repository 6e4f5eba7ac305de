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

# The C compilers the tests and the demo build generated code with: the host's, and
# arm-none-eabi-gcc with newlib for the Cortex-M4 emulator tests and the benchmark;
# cmake for the firmware example's CMake build; g++, clang and cppcheck for the strict-warning tests.
tools:
	@command -v gcc >/dev/null && command -v arm-none-eabi-gcc >/dev/null && command -v cmake >/dev/null \
	  && command -v g++ >/dev/null && command -v clang >/dev/null && command -v cppcheck >/dev/null \
	  && test -e /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/libc.a \
	  || { apt-get update -qq && apt-get install -y -qq gcc g++ clang cppcheck libc6-dev gcc-arm-none-eabi \
	       libnewlib-arm-none-eabi cmake; }

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
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache
