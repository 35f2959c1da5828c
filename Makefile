# Every install step lives here: a fresh machine needs only Python 3.11+ and make.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen

.PHONY: setup test lint format simulator

setup: ## install uv (if missing) and the locked dependencies into .venv
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user "uv==$(UV_VERSION)" \
		|| $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --quiet

test: setup ## run the whole test suite
	@$(RUN) pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: that is a failure here"; exit 1; fi; \
	exit $$status

lint: setup ## ruff and mypy
	$(RUN) ruff check usage_assets usage_assets_tests
	$(RUN) ruff format --check usage_assets usage_assets_tests
	$(RUN) mypy

format: setup
	$(RUN) ruff check --fix usage_assets usage_assets_tests
	$(RUN) ruff format usage_assets usage_assets_tests

simulator: setup ## serve the Usage API simulator on 127.0.0.1:8787
	$(RUN) usage-api-simulator --port 8787
