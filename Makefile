# Every install step lives here: a fresh machine needs only Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen

.PHONY: setup demo dev test test-dates lint format simulator bench

setup: ## install uv (if missing) and the locked dependencies into .venv
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user "uv==$(UV_VERSION)" \
		|| $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --quiet

demo: setup ## the main job: the pipeline end to end against the simulator, then a summary
	$(RUN) python -m usage_assets.dev.demo

SIM_PORT ?= 8787
DEV_HOME := $(CURDIR)/.dagster_home
dev: setup ## the simulator plus `dagster dev` on 127.0.0.1:3000, state kept in .dagster_home/
	@mkdir -p $(DEV_HOME) && cp dagster.yaml $(DEV_HOME)/dagster.yaml
	@$(RUN) usage-api-simulator --port $(SIM_PORT) & sim=$$!; trap "kill $$sim" EXIT; \
	DAGSTER_HOME=$(DEV_HOME) \
	CIRCLECI_TOKEN=$${CIRCLECI_TOKEN:-simulated-circleci-token} \
	CIRCLECI_ORG_ID=$${CIRCLECI_ORG_ID:-b9291e0d-a11e-41fb-8517-c545388b5953} \
	CIRCLECI_API_URL=$${CIRCLECI_API_URL:-http://127.0.0.1:$(SIM_PORT)/api/v2} \
	USAGE_SENSOR_INTERVAL_SECONDS=$${USAGE_SENSOR_INTERVAL_SECONDS:-10} \
	$(RUN) dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

test: setup ## run the whole test suite
	@$(RUN) pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$status

# A year boundary, a Sunday that is the last day of a month, the day after a leap day.
TEST_DATES ?= 2027-01-01T00:05:00Z 2027-10-31T00:05:00Z 2028-03-01T00:05:00Z
test-dates: setup ## the whole suite but the heavy (volume) tests again, the clock moved to each of TEST_DATES (needs libfaketime)
	@bash .ci/test-at-dates $(TEST_DATES) -- -m "not heavy" $(PYTEST_ARGS)

lint: setup ## ruff, mypy, and `dg check defs` (the code location loads)
	$(RUN) ruff check usage_assets usage_assets_tests bench
	$(RUN) ruff format --check usage_assets usage_assets_tests bench
	$(RUN) mypy
	@env -u CIRCLECI_TOKEN -u CIRCLECI_ORG_ID $(RUN) dg check defs

format: setup
	$(RUN) ruff check --fix usage_assets usage_assets_tests bench
	$(RUN) ruff format usage_assets usage_assets_tests bench

bench: setup ## ingest speed/memory vs DuckDB and pandas, quota economy, sensor cost, DuckLake writers, the daily run at 1-20 M rows of history (~40 min)
	$(UV) run --frozen --group bench python -m bench.run $(BENCH_ARGS)

simulator: setup ## serve the Usage API simulator on 127.0.0.1:8787
	$(RUN) usage-api-simulator --port 8787
