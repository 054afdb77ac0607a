# The two commands of the README. Each creates .venv if missing (idempotent) and installs the project
# with its dev extras; re-installs only when pyproject.toml changes.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.iaa-installed
PROFILE ?= demo
PYTEST_ARGS ?=

.PHONY: test book book-smoke lab bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)  ## run the test suite (unit tests + the smoke book)
	MPLBACKEND=Agg $(PY) -m pytest $(PYTEST_ARGS)

book: $(STAMP)  ## the main job: build the book from the embedded SynthAVA demo
	MPLBACKEND=Agg $(VENV)/bin/iaa book --profile $(PROFILE)

book-smoke: $(STAMP)
	MPLBACKEND=Agg $(VENV)/bin/iaa book --profile smoke

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --allow-root notebooks/

bench: $(STAMP)  ## speed and learnability reports (not tests)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf _build book/generated .iaa
