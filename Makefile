# medloop: `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit bench-loop-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/medloop demo --out demo-output

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest

test: lint typecheck unit

bench-loop-quick: install
	$(BIN)/medloop bench loop --data ../shared/data/dsb2018_nuclei --source-group fluorescence \
	  --target-group brightfield_or_he --rounds 2 --per-round 5 --quick --json bench/results/loop-quick-cpu.json

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
