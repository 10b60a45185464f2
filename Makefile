# Two commands on a fresh machine: `make run` and `make test`. Both install what is missing first
# (a .venv from pyproject.toml, node_modules from package-lock.json) and skip it when nothing changed.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=
# The trace viewer of `make run-traced` (its own virtualenv; pinned with hashes in requirements-phoenix.lock).
PHOENIX := $(shell sed -n 's/^REQUIREMENT = "\(.*\)".*/\1/p' dev/phoenix.py)

.PHONY: run run-traced deploy run-local cluster test lint fmt test-replay test-cluster test-local-model bench eval screenshots clean install lock

run: install
	@$(PY) -m dev

# The same, plus a local trace viewer (Arize Phoenix, offline) at http://localhost:6006 that both
# restate-server and the endpoint export to: one trace per run. Installed on first use (~1.5
# minutes) into .venv-phoenix/, from requirements-phoenix.lock.
run-traced: install
	@$(PY) -m dev --traced

# A second version of the endpoint beside make run's, registered without force (docs/control.md):
# runs already started finish on :9080, new runs come here. E.g. FAIL_ON_DENVER=false make deploy
DEPLOY_PORT ?= 9081
deploy: install
	@$(PY) -m dev.deploy --port $(DEPLOY_PORT)

# The same tour on a real small model (llama.cpp's server with SmolLM2-135M, no key, no network):
# built on first use (about 10 minutes), kept in .venv-local-model/ and .cache/local-model/.
run-local: install
	@$(PY) -m dev --local-model

# The same tour on three Restate nodes (ingress :8080, :28080, :38080) and a two-process endpoint.
cluster: install
	@$(PY) -m dev --cluster

test: install lint
	$(PY) -m pytest -m "not local_model" $(PYTEST_ARGS)
	@echo "--- forced replay: the crash, misbehaviour and budget tests again, with every suspension replaying the journal"
	TOUR_FORCE_REPLAY=1 $(PY) -m pytest -m "(crash or misbehaviour or budget) and not local_model and not phoenix" $(PYTEST_ARGS)

# Against a real small model (llama.cpp's server; built on first use, then reused from pip's cache).
test-local-model: install
	$(PY) -m dev.local_model --install
	$(PY) -m pytest -m local_model $(PYTEST_ARGS)

test-cluster: install
	$(PY) -m pytest -m cluster $(PYTEST_ARGS)

test-replay: install
	TOUR_FORCE_REPLAY=1 $(PY) -m pytest -m "e2e and not local_model" $(PYTEST_ARGS)

# An evaluation data set (evals/claim_agents.json) against the tour: make run's if it runs, else a
# private stack with the offline stand-in. The report is printed, and kept in Restate.
eval: install
	@$(PY) -m dev.eval $(EVAL_ARGS)

# docs/img/reviews.png, run.png, chat.png: the pages on a real stack, in the system's Chromium.
screenshots: install
	$(PY) -m dev.screenshots

# Figures, not assertions: printed, and merged into bench/results.json.
bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

install: $(VENV)/.installed node_modules/.installed

# Exactly the versions CI tested (requirements.lock, with hashes), then the project itself.
$(VENV)/.installed: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "error: Python 3.11+ is needed (found " + sys.version.split()[0] + "); set PYTHON=python3.x")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# After changing the dependencies in pyproject.toml: resolve them again into requirements.lock.
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--quiet --output-file requirements.lock
	echo '$(PHOENIX)' | $(VENV)/bin/uv pip compile - --generate-hashes --universal --python-version 3.11 \
		--quiet --output-file requirements-phoenix.lock

node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "error: npm is needed for the Restate Server (install Node.js 20+)"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# Wipes the local Restate data (invocations, journals, state) and logs; keeps installed packages.
clean:
	rm -rf .restate
