# Two commands set everything up on a fresh machine: `make run` and `make test`
# (`make check` first tells whether the model server answers).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run check test lint format messages bench soak clean lock

# The bot's own dependencies come from requirements.lock (versions and hashes fixed), the
# test tools from pyproject.toml's `dev` extra; `make lock` renews the lock after a change
# to pyproject.toml's dependencies.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lock: $(STAMP)
	$(BIN)/pip install --quiet 'pip-tools>=7.4'
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links -o requirements.lock pyproject.toml

run: $(STAMP)
	$(BIN)/phi4bot run

check: $(STAMP)
	$(BIN)/phi4bot check

test: $(STAMP)
	$(BIN)/pytest -q --cov --cov-report=
	@$(BIN)/coverage report > .coverage-report.txt || { cat .coverage-report.txt; exit 1; }
	@echo "branch coverage of bot/ and storage/: $$($(BIN)/coverage report --format=total) %"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The bot's sentences: extract them from the code, merge them into every language's .po
# (translate what is new there), and compile the .mo files the bot reads.
LOCALE := bot/shared/locale
messages: $(STAMP)
	$(BIN)/pybabel extract --no-location --sort-output --no-wrap -k Sentence -k N_ \
		--project phi4bot --version 0.1.0 --copyright-holder phi4bot -o $(LOCALE)/phi4bot.pot bot
	$(BIN)/pybabel update --no-wrap --no-fuzzy-matching --ignore-obsolete \
		-i $(LOCALE)/phi4bot.pot -d $(LOCALE) -D phi4bot
	$(BIN)/pybabel compile --statistics -d $(LOCALE) -D phi4bot

bench: $(STAMP)
	$(BIN)/python -m bench.storage
	$(BIN)/python -m bench.media
	$(BIN)/python -m bench.streaming
	$(BIN)/python -m bench.backends
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.shutdown
	$(BIN)/python -m bench.context

soak: $(STAMP)
	$(BIN)/python -m bench.soak

clean:
	rm -rf $(VENV) .pytest_cache .coverage .coverage-report.txt
