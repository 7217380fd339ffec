# make run   - set up .venv if needed, then print the balance report for config/
# make test  - same set-up, then the whole test suite
# make bench - same set-up, then the benchmarks (prints figures)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench install clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Pinned versions from requirements.lock (regenerate it with pip-tools:
#   pip-compile --extra dev --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml)
$(STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

run: install
	$(BIN)/python scripts/show_user_balances.py --config config

test: install
	$(BIN)/python -m pytest -q

# The store benchmark also measures PostgreSQL when BALANCES_TEST_POSTGRES_URL is set, e.g.
# postgresql+psycopg://postgres@127.0.0.1:5432/test (it creates and drops its own database).
bench: install
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) build *.egg-info
