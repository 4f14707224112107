# Two commands: `make run` starts everything, `make test` runs every test tier.
# Both install what is missing first: uv (pinned) into .tools/, then the locked workspace into .venv/.
PY ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

MEMBERS := pyproject.toml uv.lock shared/pyproject.toml gateway/pyproject.toml cli/pyproject.toml \
           deploy/local/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: install run up test unit bench bench-system bench-idle bench-costs bench-cli lint stop status clean asyncapi drills screens fuzz \
        k8s-secrets promtool checkov

$(UV):
	$(PY) -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) $(MEMBERS)
	$(UV) sync --frozen --all-packages
	@touch $@

# The browser tier drives Debian's Chromium (Playwright's own browser download is never used); a Japanese font
# makes its screenshots readable.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update && apt-get install -y chromium fonts-ipafont-gothic

# panva's oidc-provider (pinned by tools/test-idp/package-lock.json): the stand-in for LINE / Yahoo! JAPAN that the
# federation tests start with node; nothing is downloaded at run time.
TEST_IDP := tools/test-idp/node_modules/oidc-provider/package.json
$(TEST_IDP): tools/test-idp/package.json tools/test-idp/package-lock.json
	cd tools/test-idp && npm ci --no-audit --no-fund
	touch $@

install: $(VENV)/.synced $(CHROMIUM) $(TEST_IDP)

run: install  ## start infrastructure, services and gateway; Ctrl-C stops them all
	$(VENV)/bin/kagi run

up: install  ## the same, in the background (stop with `make stop`)
	$(VENV)/bin/kagi up

stop: install
	$(VENV)/bin/kagi down

status: install
	$(VENV)/bin/kagi status

# promtool unit-tests the alerts (tests/k8s/test_alerts.py): Debian's prometheus package, installed when missing.
promtool:
	@command -v promtool >/dev/null 2>&1 || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

# checkov scans the rendered overlays (tests/k8s/test_checkov.py); pinned, in its own venv (its many pins are not
# the workspace's), run with --skip-download so nothing is fetched at test time.
CHECKOV_VERSION := 3.3.30
checkov: .tools/checkov/bin/checkov
.tools/checkov/bin/checkov:
	$(PY) -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet checkov==$(CHECKOV_VERSION)

test: install promtool checkov  ## unit, integration and end-to-end tests; the tests start and stop the embedded servers
	$(VENV)/bin/pytest

screens: install  ## a screenshot of every console page at desktop and 375 px width, in tests/browser/screens/
	$(VENV)/bin/pytest -q tests/browser/screens.py

drills: install  ## reliability drills at full scale (kill -9, outages, redelivery); about 10 minutes
	KAGI_DRILL_SCALE=full $(VENV)/bin/pytest tests/drills -v

fuzz: install  ## schemathesis against the gateway with many examples per operation
	KAGI_FUZZ_EXAMPLES=300 $(VENV)/bin/pytest tests/fuzz -v

unit: install
	$(VENV)/bin/pytest -m "not integration and not e2e"

bench: install  ## component, lifecycle, permissions and invite benchmarks; each replaces its section of tests/bench/RESULTS.md
	$(VENV)/bin/python -m tests.bench
	$(VENV)/bin/python -m tests.bench.lifecycle
	$(VENV)/bin/python -m tests.bench.permissions
	$(VENV)/bin/python -m tests.bench.invite

asyncapi: install  ## regenerate deploy/asyncapi.json and the Strimzi topic/user manifests from the catalogue
	$(VENV)/bin/kagi catalogue asyncapi --write
	$(VENV)/bin/kagi catalogue strimzi

bench-system: install  ## the whole system under open-loop mixed load; appends to tests/bench/RESULTS.md
	$(VENV)/bin/python -m tests.bench.system

bench-idle: install  ## the whole system started and left alone for 60 s: CPU per process; writes its RESULTS.md section
	$(VENV)/bin/python -m tests.bench.idle

bench-costs: install  ## each request type of the system mix sent 20 times: DB commands and internal calls per request; writes its RESULTS.md section
	$(VENV)/bin/python -m tests.bench.costs

bench-cli: install  ## wall and CPU time of `kagi` commands that need no server (--help, calendar, catalogue); writes its RESULTS.md section
	$(VENV)/bin/python -m tests.bench.startup

k8s-secrets:  ## random secrets for the overlays' secretGenerators (git-ignored; existing ones are kept)
	$(PY) deploy/k8s/generate_secrets.py deploy/k8s/overlays/dev deploy/k8s/overlays/prod

SPECTRAL := tools/spectral/node_modules/.bin/spectral

$(SPECTRAL): tools/spectral/package.json tools/spectral/package-lock.json
	cd tools/spectral && npm ci --no-audit --no-fund
	@touch $@

lint: install $(SPECTRAL)  ## ruff, mypy (strict), Spectral over the OpenAPI and AsyncAPI documents (no error, no warning)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy shared/src $(wildcard services/*/src) gateway/src cli/src deploy/local/src
	@mkdir -p var
	$(VENV)/bin/python -m kagi_gateway.openapi var/openapi.json
	npx --no --prefix tools/spectral spectral lint --ruleset .spectral.yaml --fail-severity warn var/openapi.json deploy/asyncapi.json

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
