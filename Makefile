# Two commands do everything on a fresh machine: `make run` and `make test`.
# Unset DATABASE_URL / REDIS_URL: SQLite and a local-memory cache. Set them: PostgreSQL and Redis.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 8000
PYTEST_ARGS ?=
# Processes for the suites that may run side by side (the machine has 2 cores; 0 runs them in this one).
TEST_WORKERS ?= 2
# One line per hostile-input and end-to-end suite (requests sent, failures, 5xx), for .ci/run to print last.
SUMMARY ?= var/suite-summary.txt

.PHONY: install migrate run test lint format schema check-deploy clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	$(BIN)/gunicorn -c config/gunicorn.py config.wsgi --bind $(HOST):$(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: install
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file var/openapi.yaml

# Django's deployment checks and ours (core/checks.py), in the environment it is run with: run it with the
# production variables set (DJANGO_ENV=production, secrets, DATABASE_URL, REDIS_URL); any warning fails.
check-deploy: install
	$(BIN)/python manage.py check --deploy --fail-level WARNING

test: install
	$(BIN)/python manage.py check --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings.test $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null
	$(BIN)/ruff check .
	@mkdir -p var && rm -f $(SUMMARY)
	@# Side by side in TEST_WORKERS processes (pytest-xdist): each has its own test database and cache key prefix.
	E2E_SUMMARY_FILE=$(SUMMARY) $(BIN)/python -m pytest -n $(TEST_WORKERS) --ignore=tests/e2e --ignore=tests/ops $(PYTEST_ARGS)
	@# In one process: load and signal tests time real servers, and one fills the shared Redis (maxmemory).
	E2E_SUMMARY_FILE=$(SUMMARY) $(BIN)/python -m pytest tests/ops $(PYTEST_ARGS)
	@# Last and on their own: fault tests stop PostgreSQL and Redis, which would break a session still running.
	E2E_SUMMARY_FILE=$(SUMMARY) $(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache db.sqlite3 var

# The service against two floors (raw WSGI, bare Django) in one interleaved run; bench/RESULTS.md.
# Quick by default (staff list at 1,000 and 100,000 users); BENCH_FULL=1 for 1,000,000. Options: BENCH_ARGS.
BENCH_ARGS ?=
.PHONY: bench
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Two commits of the service side by side with the floor (bench/compare.py): make bench-compare BASE=c8a198c [NEW=...]
.PHONY: bench-compare
bench-compare: install
	$(BIN)/python -m bench.compare $(BASE) $(NEW) $(BENCH_ARGS)

# A longer schemathesis run than CI's (tests/hostile): fresh random seed, more examples and scenarios, 30 min cap.
# With DATABASE_URL and REDIS_URL set it fuzzes against PostgreSQL and Redis. Options: FUZZ_EXAMPLES, FUZZ_ARGS.
FUZZ_EXAMPLES  ?= 200
FUZZ_SCENARIOS ?= 100
FUZZ_BUDGET    ?= 1800
FUZZ_ARGS      ?=
.PHONY: fuzz
fuzz: install
	HOSTILE_FUZZ_RANDOM=1 HOSTILE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) HOSTILE_FUZZ_SCENARIOS=$(FUZZ_SCENARIOS) \
	HOSTILE_FUZZ_BUDGET=$(FUZZ_BUDGET) $(BIN)/python -m pytest tests/hostile/test_schemathesis.py \
	--timeout=$$(( $(FUZZ_BUDGET) + 600 )) $(FUZZ_ARGS)
