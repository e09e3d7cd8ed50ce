# The two commands: `make run` (set up and serve on SQLite) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run test serve demo lint format migrate admin-key schema bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

migrate: $(VENV)/.installed
	$(BIN)/python manage.py migrate --noinput

admin-key: migrate
	@$(BIN)/python manage.py create_admin_key --if-none

## Set up a virtualenv, check the database, migrate, collect static files, print a
## first admin key if none exists (last, framed), and serve the API, the WebSocket
## endpoints and the admin on http://$(HOST):$(PORT). Static files are served by the
## application (WhiteNoise), as under `make serve`.
run: $(VENV)/.installed
	@$(BIN)/python manage.py prepare --static
	$(BIN)/python manage.py runserver $(HOST):$(PORT) --nostatic

## Serve with uvicorn workers (production-style; set SECRET_KEY, DEBUG=false, ALLOWED_HOSTS).
## A database that cannot be reached, or does not exist, stops it at once with one line.
serve: $(VENV)/.installed
	@$(BIN)/python manage.py prepare --static
	$(BIN)/uvicorn llmwrapper.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WORKERS) --no-access-log --lifespan off

## The service with scripted stand-ins for every vendor (no keys, no network), on a
## database of its own (db.sqlite3-demo): try chats, streaming, memories and tools.
demo: $(VENV)/.installed
	@$(BIN)/python manage.py demo --host $(HOST) --port $(PORT)

## Install the dev requirements and run the test suite.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: $(VENV)/.installed
	$(BIN)/python manage.py spectacular --file openapi.yaml --validate

clean:
	rm -rf $(VENV) staticfiles test-db.sqlite3*
