# Relay Control Center: `make run` for a local demo, `make test` for the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve worker test lint bench messages screenshots clean help

help:
	@echo "make run    - install, migrate, load the demo data and start the development server"
	@echo "make test   - install the dev extras and run lint, types, migrations check and tests"
	@echo "make serve  - run gunicorn with production settings and the job worker (see README: Deployment)"
	@echo "make worker - run only the background-job worker (manage.py db_worker)"
	@echo "make bench  - run the benchmarks in tests/bench"
	@echo "make messages - refresh and compile the Japanese and English catalogues"
	@echo "make screenshots - every screen as the administrator at 1366 and 390 px into var/screenshots/"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(VENV)/.installed $@

run: export DEBUG ?= 1
run: $(VENV)/.installed
	$(MANAGE) migrate --no-input
	$(MANAGE) load_demo
	$(MANAGE) ensure_admin
	-$(MANAGE) export_config --recover
	@echo
	@echo "  Relay Control Center: open http://$(HOST):$(PORT)/ and log in as the administrator above."
	@echo
	@# The background-job worker (log reads, publishing) runs beside the server and stops with it.
	$(MANAGE) db_worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(MANAGE) runserver $(HOST):$(PORT)

worker: $(VENV)/.installed
	$(MANAGE) db_worker --no-reload

serve: export DEBUG ?= 0
serve: $(VENV)/.installed
	$(MANAGE) check --deploy
	$(MANAGE) collectstatic --no-input --verbosity 0
	$(MANAGE) migrate --no-input
	$(MANAGE) ensure_admin
	-$(MANAGE) export_config --recover
	$(MANAGE) db_worker --no-reload & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/gunicorn -c gunicorn.conf.py controlcenter.wsgi:application

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=1 $(BIN)/mypy .
	DEBUG=1 $(MANAGE) makemigrations --check --dry-run

test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	DEBUG=1 $(BIN)/python -m tests.bench

messages: $(VENV)/.installed-dev
	DEBUG=1 $(MANAGE) makemessages --locale ja --locale en --no-obsolete --ignore '.venv/*' --ignore 'var/*'
	DEBUG=1 $(MANAGE) compilemessages --ignore '.venv/*'

# The page sweep (tests/browser/test_sweep.py) photographs every page while it checks them.
screenshots: $(VENV)/.installed-dev
	rm -rf var/screenshots
	CC_SCREENSHOTS=$(CURDIR)/var/screenshots $(BIN)/pytest tests/browser/test_sweep.py -q \
	  -k test_every_page_was_visited -p no:cacheprovider
	@echo "Screenshots: var/screenshots/ ($$(ls var/screenshots | wc -l) files)"

clean:
	rm -rf $(VENV) var/staticfiles .mypy_cache .ruff_cache .pytest_cache
