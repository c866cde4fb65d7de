# Bitrecs: `make run` starts the whole stack on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test setup setup-dev system-packages lint typecheck migrate demo clean storefront-assets plugin-zip theme-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when a requirements file changed (the stamp files record the last install).
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.installed $@

# System packages (Debian), installed only when missing: Chromium for the browser tests (driven by Playwright with
# executable_path; Playwright never downloads a browser), PHP, PHPUnit and WordPress (with a classic theme) for the
# WooCommerce plugin's tests. Node.js and npm come with the machine.
APT_PACKAGES := chromium php-cli phpunit php-mysql wordpress wordpress-theme-twentytwentyone
system-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# Node tools (theme check, Lighthouse, Chart.js), from the lock file.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: system-packages $(VENV)/.installed

setup-dev: system-packages $(VENV)/.installed-dev node_modules/.installed

migrate: setup
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	APP_URL=$${APP_URL:-http://127.0.0.1:$(PORT)} $(BIN)/python manage.py seed_demo

run: demo
	@echo ""
	@echo "Bitrecs is starting:"
	@echo "  health:      http://127.0.0.1:$(PORT)/healthz"
	@echo "  API docs:    http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  admin:       http://127.0.0.1:$(PORT)/admin/"
	@echo "  storefront:  http://127.0.0.1:$(PORT)/demo/  (the demo store with the widget; checkout sends a signed order webhook)"
	@echo "  portal:      http://127.0.0.1:$(PORT)/portal/  (demo merchant: merchant@demo.local / demo; miners and validators sign in with their hotkey)"
	@echo "  hotkeys:     http://127.0.0.1:$(PORT)/portal/hotkey  (local neurons sign with: .venv/bin/python manage.py portal_hotkey_signature --wallet-name miner1|validator --message -)"
	@echo "  widget API:  http://127.0.0.1:$(PORT)/api/v1/recommendations?site_key=demo&placement=home"
	@echo "  validator:   http://127.0.0.1:7779 (API key: $${BITRECS_API_KEY:-local}), 3 offline miners on 8091-8093"
	@echo ""
	APP_URL=$${APP_URL:-http://127.0.0.1:$(PORT)} $(BIN)/honcho start -f Procfile -p $(PORT)

test: setup-dev
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup-dev
	$(BIN)/mypy .

clean:
	rm -rf $(VENV) .local

# Catalog sync benchmark (needs PostgreSQL and Redis on 127.0.0.1); see bench/README.md. BENCH_ARGS="--sizes 20000".
.PHONY: bench-sync
bench-sync: setup-dev
	$(BIN)/python -m bench.sync_bench $(BENCH_ARGS)

# The storefront packages ship widget.js from its one source, and the portal Chart.js from npm (CI checks the copies).
WIDGET_JS := recommendations/static/bitrecs/widget.js
storefront-assets: node_modules/.installed
	cp $(WIDGET_JS) extensions/bitrecs-widget/assets/bitrecs-widget.js
	cp node_modules/chart.js/dist/chart.umd.min.js portal/static/portal/vendor/chart.umd.min.js
	cp $(WIDGET_JS) plugins/woocommerce/bitrecs/assets/bitrecs-widget.js

# The WooCommerce plugin as an installable zip (dist/bitrecs-woocommerce.zip), without its tests.
plugin-zip: storefront-assets
	rm -rf dist/plugin && mkdir -p dist/plugin
	cp -r plugins/woocommerce/bitrecs dist/plugin/bitrecs
	rm -rf dist/plugin/bitrecs/tests dist/plugin/bitrecs/phpunit.xml.dist
	rm -f dist/bitrecs-woocommerce.zip
	cd dist/plugin && $(CURDIR)/$(BIN)/python -m zipfile -c ../bitrecs-woocommerce.zip bitrecs
	rm -rf dist/plugin
	@echo "built dist/bitrecs-woocommerce.zip"

# Shopify Theme Check on the theme app extension (the checks `shopify app deploy` runs).
theme-check: node_modules/.installed
	node .ci/theme_check.mjs --strict
