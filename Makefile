# make demo  — install wotr into .venv and run the demo (throwaway repo, keys, claims)
# make test  — install wotr with its test extras into .venv and run the whole test suite
# make lint  — ruff and mypy --strict
# make bench — the benchmarks under bench/ (ratios against baselines measured in the same run)

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	bash demo/demo.sh

test: $(VENV)/.installed
	$(PY) -m pytest -n auto -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) bench/run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
