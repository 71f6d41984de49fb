# Two commands from a fresh clone:
#   make demo   meta-trains MAML on sinusoid tasks, evaluates, exports and serves one task
#   make test   installs the package with its test extras and runs the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The default suite is fast; CI (.ci/run) also runs the slow real-data tests.
PYTEST_ARGS ?= -m "not slow"

.PHONY: demo test test-all lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(VENV)/.installed-demo: setup.cfg pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[demo]"
	touch $@

demo: $(VENV)/.installed-demo
	$(PY) -m tfmeta.cli.demo

# pytest exits 5 when it collected no tests: that is a failure here too.
test: $(VENV)/.installed-test
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$status

test-all: $(VENV)/.installed-test
	$(PY) -m pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check tfmeta tests benchmarks

bench: $(VENV)/.installed-test
	$(PY) benchmarks/episodes.py
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo_output
