# patchflow — the only set-up a newcomer needs:  make demo   |   make test
# (plus `make up` for the Airflow UI against the simulator)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export PYTHONPATH := $(CURDIR):$(CURDIR)/plugins

.PHONY: help install system-deps demo demo-staged up test faults lint format simulator bench lock clean

help:
	@echo "make demo       two patch runs side by side, each on its own simulated demo fleet (SQLite, no services):"
	@echo "                  the whole fleet with snapshots, and a staged rollout that a health gate halts"
	@echo "make demo-staged  the staged scenario alone"
	@echo "make test       install if needed and run the whole suite, lint included"
	@echo "make faults     the fault matrix alone (docs/fault-matrix.md; also part of make test)"
	@echo "make up         Airflow UI at http://127.0.0.1:8080 + the CLC simulator on :8899 (Ctrl-C stops all)"
	@echo "                  PORT=8081 SIM_PORT=8900 pick other ports (or PATCHFLOW_PORT, PATCHFLOW_SIM_PORT);"
	@echo "                  BIND=0.0.0.0 listens on every interface (or PATCHFLOW_BIND; default 127.0.0.1 only)"
	@echo "make simulator  the CLC simulator alone on http://127.0.0.1:8899 (demo fleet; SIM_PORT=… too)"
	@echo "make bench      the benchmark scripts in bench/"
	@echo "make lock       re-resolve requirements.txt and rewrite constraints.txt"

$(STAMP): requirements.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -c constraints.txt
	@touch $(STAMP)

install: $(STAMP)

# The published CLC SDK (clc-sdk 2.51), a real client the simulator is judged by
# (tests/simulator/test_sim_published_sdk.py): its own venv, never imported by patchflow.
SDK_VENV  := .sdk-venv
SDK_STAMP := $(SDK_VENV)/.installed-stamp
$(SDK_STAMP):
	@test -x $(SDK_VENV)/bin/python || $(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/python -m pip install --quiet clc-sdk==2.51
	@touch $(SDK_STAMP)

# What the tests need beyond Python, from Debian: chromium (the browser tests), and the
# PostgreSQL and Redis server binaries (the real-stack tests start private servers on free ports).
SYSTEM_PACKAGES := chromium:chromium initdb:postgresql redis-server:redis-server psql:postgresql-client
system-deps:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do \
	  bin=$${pair%%:*}; pkg=$${pair#*:}; \
	  if ! command -v $$bin >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/$$bin >/dev/null 2>&1; then \
	    missing="$$missing $$pkg"; fi; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "make test needs the Debian packages$$missing: install them (sudo apt-get install$$missing)" \
	      "or run make test as root, which does. Without them: .venv/bin/python -m pytest -m 'not slow and not browser'" >&2; \
	    exit 1; \
	  fi; \
	fi

demo: install
	$(BIN)/python -m launcher.demo

demo-staged: install
	$(BIN)/python -m launcher.demo --staged

# Only variables given on make's command line count (a PORT exported for something else must not);
# the launcher reads PATCHFLOW_PORT / PATCHFLOW_SIM_PORT / PATCHFLOW_BIND from the environment.
given = $(if $(filter command line,$(origin $(1))),$($(1)))
cli = $(if $(call given,$(1)),$(2) $(call given,$(1)))

up: install
	$(BIN)/python -m launcher.up $(call cli,PORT,--port) $(call cli,SIM_PORT,--sim-port) $(call cli,BIND,--bind)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The suite's modules are spread over parallel pytest-xdist workers, one module per worker at a
# time, the longest first (tests/conftest.py). One worker alone leaves a core idle while its test
# waits on simulated time or Airflow's loops; 4 keep both cores of a 2-core machine busy.
# TEST_WORKERS=0 on make's command line runs the suite in one process.
TEST_WORKERS = $(or $(call given,TEST_WORKERS),4)

test: install system-deps $(SDK_STAMP) lint
	CLC_SDK_PYTHON=$(CURDIR)/$(SDK_VENV)/bin/python $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The fault matrix (tests/faults, docs/fault-matrix.md): every scenario, I1-I8 judged from the
# simulator's own state. Slow-marked, so `make test` runs it too.
faults: install
	$(BIN)/python -m pytest tests/faults -m faults -n $(TEST_WORKERS) --dist loadfile

simulator: install
	$(BIN)/python -m simulator --fleet simulator/fleets/demo.yaml --port $(or $(call given,SIM_PORT),$(PATCHFLOW_SIM_PORT),8899)

bench: install
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -r requirements.txt
	.lock-venv/bin/python -m pip freeze --exclude-editable > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf .demo .pytest_cache .ruff_cache .mypy_cache test-output $(SDK_VENV)
