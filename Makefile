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

# Each test file runs in a fresh process. TensorFlow, XLA, the LiteRT converter and MuJoCo
# keep process-wide native state, and long processes (the whole suite, or a whole folder) hit
# heap corruption ("free(): invalid pointer", a segfault in an XLA test) that no file shows
# alone; see tests/conftest.py for the exit. pytest exits 5 for a file whose tests were all
# deselected; a run in which no file ran a test is a failure.
test: $(VENV)/.installed-test
	@failed=0; ran=0; \
	for target in $$(find tests -name 'test_*.py' | sort); do \
	  echo "== $$target"; \
	  $(PY) -m pytest $(PYTEST_ARGS) $$target; status=$$?; \
	  if [ $$status -eq 0 ]; then ran=1; \
	  elif [ $$status -ne 5 ]; then failed=1; echo "make test: $$target failed ($$status)" >&2; fi; \
	done; \
	if [ $$ran -eq 0 ] && [ $$failed -eq 0 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$failed

test-all: $(VENV)/.installed-test
	$(PY) -m pytest

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check tfmeta tests benchmarks

bench: $(VENV)/.installed-test
	$(PY) benchmarks/episodes.py
	$(PY) benchmarks/throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo_output
