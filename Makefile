# Bitrecs: `make run` starts the whole stack on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
export PORT

.PHONY: run test setup setup-dev system-packages lint typecheck migrate demo clean

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

# System packages (Debian): none are needed yet beyond the Python toolchain.
system-packages:
	@true

setup: system-packages $(VENV)/.installed

setup-dev: system-packages $(VENV)/.installed-dev

migrate: setup
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo

run: demo
	@echo ""
	@echo "Bitrecs is starting:"
	@echo "  health:      http://127.0.0.1:$(PORT)/healthz"
	@echo "  API docs:    http://127.0.0.1:$(PORT)/api/docs/"
	@echo "  admin:       http://127.0.0.1:$(PORT)/admin/"
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
