# Trusted Data Space — every target is idempotent and fast once set up.
#   make demo   set up if needed, then run the full lifecycle demo on the embedded chain
#   make test   set up if needed, then run the whole test suite
#   make bench  run the benchmarks (each prints a table; --json for machine output)
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV  := .venv
PY    := $(VENV)/bin/python
TDS   := $(VENV)/bin/tds
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup prereqs browser postgres mosquitto demo test test-python test-contracts bench clean

help:
	@echo "make demo   - set up (first run) and run the full lifecycle demo"
	@echo "make test   - set up (first run) and run the whole test suite"
	@echo "make bench  - run the benchmarks"
	@echo "make setup  - only set up (venv, pip, npm, compiler front-end, Brownie networks)"
	@echo "make browser - install Debian's chromium + chromium-driver (auditor page test)"
	@echo "make postgres - install Debian's postgresql server binaries (the index's PostgreSQL test starts its own)"
	@echo "make mosquitto - install Debian's mosquitto broker binary (the MQTT source tests start their own)"

prereqs:
	@command -v python3 >/dev/null || { echo "python3 is missing: install Python 3.11+ (Debian: apt-get install python3 python3-venv)"; exit 1; }
	@python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { echo "Python $$(python3 -V 2>&1) is too old: install Python 3.11+"; exit 1; }
	@python3 -c 'import venv, ensurepip' 2>/dev/null || { echo "python3 venv/ensurepip is missing: install it (Debian: apt-get install python3-venv)"; exit 1; }
	@command -v node >/dev/null || { echo "node is missing: install Node.js 20+ (Debian: apt-get install nodejs npm)"; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' || { echo "Node $$(node --version) is too old: install Node.js 20+"; exit 1; }
	@command -v npm >/dev/null || { echo "npm is missing: install npm (Debian: apt-get install npm)"; exit 1; }

$(VENV)/.installed: pyproject.toml | prereqs
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

node_modules/.installed: package.json package-lock.json | prereqs
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(VENV)/.setup-done: $(VENV)/.installed node_modules/.installed
	$(TDS) setup
	@touch $@

# headless Chromium for the auditor-page test (tests/tds/test_auditor_page_browser.py)
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ]; then \
	  echo "chromium/chromedriver missing and cannot install them (needs apt-get as root): apt-get install chromium chromium-driver"; exit 1; fi; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null

# PostgreSQL server binaries for the event index's PostgreSQL test (tests/audit/test_index_postgres.py
# starts a private server from them on a free loopback port; nothing runs as a system service)
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then exit 0; fi; \
	if ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ]; then \
	  echo "PostgreSQL server binaries missing and cannot install them (needs apt-get as root): apt-get install postgresql"; exit 1; fi; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null

# Mosquitto for the MQTT source tests (tests/offchain/sources/test_mqtt.py starts a private broker
# with its own config on a free loopback port; the system service is never used)
mosquitto:
	@if [ -x /usr/sbin/mosquitto ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ]; then \
	  echo "mosquitto missing and cannot install it (needs apt-get as root): apt-get install mosquitto"; exit 1; fi; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null

setup: $(VENV)/.setup-done
	@$(TDS) setup >/dev/null   # cheap re-check: front-end, links and Brownie networks still in place

demo: setup
	$(TDS) demo

test: setup browser postgres mosquitto
	$(PY) -m pytest -p no:pytest-brownie tests --ignore=tests/contracts -q
	$(VENV)/bin/brownie test tests/contracts --network tds-test

test-python: setup browser postgres mosquitto
	$(PY) -m pytest -p no:pytest-brownie tests --ignore=tests/contracts -q

test-contracts: setup
	$(VENV)/bin/brownie test tests/contracts --network tds-test

bench: setup
	$(PY) -m bench.gas
	$(PY) -m bench.crypto
	$(PY) -m bench.identity
	$(PY) -m bench.gas_growth

clean:
	-$(TDS) chain down
	rm -rf build artifacts reports .tds .pytest_cache .hypothesis
