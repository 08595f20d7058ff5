# make demo  — install wotr into .venv and run the demo (throwaway repo, keys, claims)
# make test  — install wotr with its test extras into .venv and run the whole test suite
# make lint  — ruff and mypy --strict
# make bench — the benchmarks under bench/ (ratios against baselines measured in the same run)
# sudo make install                  — wotr in a venv at /opt/wotr, linked from /usr/local/bin
# sudo make install-hooks ENABLE=apt — the hooks in /usr/local/lib/wotr/hooks (+ apt's conf)
# sudo make uninstall                — remove everything the two installed (docs/install.md)

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test lint bench clean install install-hooks uninstall

# System install (docs/install.md); every directory may be overridden, e.g. for a test.
PREFIX ?= /opt/wotr
BINDIR ?= /usr/local/bin
HOOKSDIR ?= /usr/local/lib/wotr/hooks
SYSCONFDIR ?= /etc
BUNDLESDIR ?= /var/lib/wotr/bundles
ENABLE ?=
INSTALL_ENV = PREFIX='$(PREFIX)' BINDIR='$(BINDIR)' HOOKSDIR='$(HOOKSDIR)' \
	SYSCONFDIR='$(SYSCONFDIR)' BUNDLESDIR='$(BUNDLESDIR)' ENABLE='$(ENABLE)' PYTHON='$(PYTHON)'


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

install:
	$(INSTALL_ENV) sh tools/install.sh install

install-hooks:
	$(INSTALL_ENV) sh tools/install.sh install-hooks

uninstall:
	$(INSTALL_ENV) sh tools/install.sh uninstall
