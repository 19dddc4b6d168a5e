# settleguard — every target sets itself up: a missing .venv is created and the package installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: demo test test-fast test-ha bench lint clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/settleguard demo

# independent tests on both cores (pytest-xdist; worksteal: an idle core takes tests queued for the busy one, so the
# slow end-to-end tail is not left on one core); `.venv/bin/pytest FILE` runs one file in one process
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# PostgreSQL primary + streaming standby on free ports, failover and reads from the standby (tests/ha; they also
# run in `make test`; skipped with the reason where PostgreSQL's server binaries are missing; docs/operations.md)
test-ha: $(STAMP)
	$(BIN)/python -m pytest tests/ha -n 2 -rs

bench: $(STAMP)
	$(BIN)/python bench/settle.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/settleguard

clean:
	rm -rf $(VENV) settleguard.db settleguard.db-wal settleguard.db-shm settleguard.db.simbank.jsonl demo-data .pytest_cache
