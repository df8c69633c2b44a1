# One entry point for people and CI. `make demo` and `make test` work on a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHECKOV_STAMP := .venv-checkov/.installed
PROWLER_STAMP := .venv-prowler/.installed
CONTEXT ?=
# Node.js 22 from the npm registry's `node` package (package.json; `npm ci` installs it), ahead of the machine's own
# node: the CDK CLI and jsii (the CDK's bridge, in synth, the tests and the demo) run on it.
NODE_BIN := $(abspath node_modules/.bin)

.PHONY: install dev lint test test-all demo emulator synth deploy destroy bench bench-prowler prowler-venv browser clean

# What the project, the CLI, the demo and synth need; the scanners the full tier runs against our templates and
# the emulator (checkov, Prowler) get virtualenvs of their own, installed by `make test-all`.
install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml package.json
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q --no-deps -e .
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# checkov in a virtualenv of its own (its pins conflict with requirements-dev.txt).
$(CHECKOV_STAMP): requirements-checkov.txt
	test -d .venv-checkov || $(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q -r requirements-checkov.txt
	touch $@

# Prowler in a virtualenv of its own (it pins boto3 1.40.61). tests/test_prowler.py runs its
# ecs_task_definitions_no_privileged_containers check against moto; about 5 minutes on a fresh venv.
prowler-venv: $(PROWLER_STAMP)

$(PROWLER_STAMP):
	test -d .venv-prowler || $(PYTHON) -m venv .venv-prowler
	.venv-prowler/bin/pip install -q "prowler==5.46.0"
	touch $@

# Headless Chromium and its driver from Debian's packages, for tests/test_report_browser.py (the HTML report
# opened in a real browser). Nothing when both are there; as root (CI) or through sudo otherwise.
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
browser:
	@test -x $(CHROMIUM) -a -x $(CHROMEDRIVER) || { \
	  sudo=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

dev: install

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache  # the layers and no cycles (pyproject.toml [tool.importlinter])

# The tiers (docs/development.md, "Tests"). `make test`: lint, types, the import contracts and the fast suite (no
# Prowler, checkov or Chromium; nothing marked slow). `make test-all`: everything, as CI runs it (.ci/run). Both in
# PYTEST_WORKERS processes (pytest-xdist), a test file to a process so that its module fixtures (a synth, an
# emulator's world) are built once.
PYTEST_WORKERS ?= auto
PYTEST_PARALLEL = -n $(PYTEST_WORKERS) --dist loadfile

test: lint
	PATH=$(NODE_BIN):$$PATH $(BIN)/pytest $(PYTEST_PARALLEL) -m "not slow and not external"

test-all: lint $(CHECKOV_STAMP) prowler-venv browser
	PATH=$(NODE_BIN):$$PATH $(BIN)/pytest $(PYTEST_PARALLEL)

demo: install
	PATH=$(NODE_BIN):$$PATH $(BIN)/python -m demo

# The emulator (moto + the ECS daemon API) on a free loopback port, seeded, until Ctrl-C; prints the export lines that
# point ecs-remediate at it (README, "Try the CLI").
emulator: install
	@$(BIN)/python -m demo.emulator

synth: install
	PATH=$(abspath $(BIN)):$(NODE_BIN):$$PATH npx --no-install cdk synth --quiet $(CONTEXT)

deploy: install
	PATH=$(abspath $(BIN)):$(NODE_BIN):$$PATH npx --no-install cdk deploy $(CONTEXT)

destroy: install
	PATH=$(abspath $(BIN)):$(NODE_BIN):$$PATH npx --no-install cdk destroy $(CONTEXT)

# The sweep benchmark, then the burst benchmarks (issue 23; about 40 minutes together on 2 cores): 1,000 registrations
# through the event queue and through the former asynchronous invocation, and the hub's fairness across members.
bench: install
	PATH=$(NODE_BIN):$$PATH $(BIN)/python -m bench
	PATH=$(NODE_BIN):$$PATH $(BIN)/python -m bench.burst
	PATH=$(NODE_BIN):$$PATH $(BIN)/python -m bench.hub_burst

# The sweep benchmark with Prowler and Cloud Custodian against the same emulator. Each tool gets a
# virtualenv of its own (Prowler pins boto3 1.40.61); minutes at 5,000 revisions.
bench-prowler: install $(PROWLER_STAMP)
	test -x .venv-c7n/bin/custodian || ($(PYTHON) -m venv .venv-c7n && .venv-c7n/bin/pip install -q "c7n==0.9.53")
	PATH=$(NODE_BIN):$$PATH $(BIN)/python -m bench --prowler --custodian

clean:
	rm -rf $(VENV) .venv-checkov .venv-prowler cdk.out node_modules .mypy_cache .ruff_cache
