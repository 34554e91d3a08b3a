# medloop: `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip
STAMP  := $(VENV)/.installed
# The browser code's linter and formatter (Biome), pinned by tools/web/package-lock.json and
# installed with `npm ci` into tools/web/node_modules (git-ignored). Nothing here ships.
WEB       := src/medloop/web
WEB_TOOLS := tools/web
BIOME     := $(WEB_TOOLS)/node_modules/.bin/biome
WEB_STAMP := $(WEB_TOOLS)/node_modules/.installed

.PHONY: install web-tools services demo test lint format typecheck unit cluster bench-loop-quick bench-server-load bench-cluster clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints.txt torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The learning loop on the bundled sample (a 45 s training budget), then a demo server with the
# sample as a project (Ctrl-C to stop).
demo: install
	$(BIN)/medloop demo --out demo-output
	$(BIN)/medloop demo --serve --out demo-output

web-tools: $(WEB_STAMP)

$(WEB_STAMP): $(WEB_TOOLS)/package.json $(WEB_TOOLS)/package-lock.json
	scripts/install-node.sh
	cd $(WEB_TOOLS) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

# Python: ruff lint + format check, and the layers (import-linter contracts in pyproject.toml).
# Browser code: Biome lint + format check (biome.json).
lint: install web-tools
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIOME) ci --error-on-warnings $(WEB)

# Rewrite in place what `make lint` checks: formatting, and Biome's safe fixes.
format: install web-tools
	$(BIN)/ruff format src tests bench
	$(BIOME) check --write $(WEB)

typecheck: install
	$(BIN)/mypy

# Test services, installed with apt-get when missing: PostgreSQL server binaries,
# Orthanc with its DICOMweb plugin, Debian's Chromium for the browser tests, and
# Redis for the cluster tests and `make cluster`.
services:
	scripts/install-postgres.sh
	scripts/install-orthanc.sh
	scripts/install-browser.sh
	scripts/install-redis.sh

# The storage, job and server tests run on SQLite and again on a throwaway PostgreSQL
# (scripts/with-postgres.sh starts it on a free loopback port and removes it after).
unit: install services
	PYTHON=$(BIN)/python scripts/with-postgres.sh $(BIN)/pytest

test: lint typecheck unit

# The distributed topology on loopback (deploy/compose.yaml without containers):
# PostgreSQL and Redis from Debian, 2 API replicas on ports 8001-8002, a training
# worker and an analyze/DICOM worker, one shared blob folder. Ctrl-C stops it all.
cluster: install
	scripts/install-postgres.sh
	scripts/install-redis.sh
	$(BIN)/python bench/cluster.py --apis 2 --workers train,analyze+dicom

bench-loop-quick: install
	$(BIN)/medloop bench loop --data ../shared/data/dsb2018_nuclei --source-group fluorescence \
	  --target-group brightfield_or_he --rounds 2 --per-round 5 --quick --json bench/results/loop-quick-cpu.json

bench-server-load: install
	$(BIN)/python bench/server_load.py --requests 384 --raw-repeats 48 --json bench/results/server-load-cpu.json

bench-cluster: install
	scripts/install-postgres.sh
	scripts/install-redis.sh
	$(BIN)/python bench/cluster_load.py --json bench/results/cluster-cpu.json

clean:
	rm -rf $(VENV) $(WEB_TOOLS)/node_modules demo-output .pytest_cache .mypy_cache .ruff_cache
