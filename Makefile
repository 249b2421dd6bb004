# theorylab entry points. Each target creates .venv on first use and re-installs only when
# pyproject.toml changed (the stamp file records the last install).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# pip prints one warning per package for the machine's local index mirrors; keep the log readable.
PIP_QUIET := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: help reproduce test lint lab book bench assignments clean

help:
	@echo "make reproduce   execute every chapter, print the claims report (THEORYLAB_SCALE=full on a GPU)"
	@echo "make test        ruff, unit and kernel tests, every chapter through nbval"
	@echo "make lab         JupyterLab on 127.0.0.1 with the chapters opening as notebooks"
	@echo "make book        build the Jupyter Book 2 site (HTML needs the MyST theme, downloaded once)"
	@echo "make bench       time the Triton kernels against torch (needs a GPU)"
	@echo "make assignments student and instructor notebooks from every chapter's exercises"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing theorylab and its dependencies into $(VENV) (first run: a few minutes)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | $(PIP_QUIET)
	@mkdir -p $(VENV)/etc/jupyter/labconfig
	@# Jupyter servers refuse to run as root without this; our machines run everything as root.
	@echo '{"ServerApp": {"allow_root": true}}' > $(VENV)/etc/jupyter/jupyter_server_config.json
	@# Open the chapters (jupytext MyST .md files) as notebooks by default.
	@echo '{"@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}}}' \
	  > $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json
	@touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m theorylab.reproduce

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check .

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.root_dir=.

# mystmd executes and validates the content offline; only the HTML theme (book-theme) must be
# downloaded, once, from the MyST template service. Without it, the content is still built.
book: $(STAMP)
	@export PATH="$(CURDIR)/$(VENV)/bin:$$PATH"; \
	if myst build --execute --html && test -f _build/html/index.html; then \
	  echo "book: HTML site in _build/html (open _build/html/index.html)"; \
	else \
	  echo ""; \
	  echo "book: no HTML: the MyST book-theme is downloaded from the MyST template service, which this"; \
	  echo "book: machine cannot reach (it needs internet once). Building and executing the content alone."; \
	  rm -rf _build/site/content; \
	  myst build --execute || true; \
	  test -n "$$(ls _build/site/content/*.json 2>/dev/null)" || { echo "book: the content build failed"; exit 1; }; \
	  echo "book: content executed and validated: $$(ls _build/site/content/*.json | wc -l) pages in _build/site/content."; \
	fi

bench: $(STAMP)
	$(PY) -m theorylab.kernels.bench

assignments: $(STAMP)
	$(VENV)/bin/theorylab assignments release --out _build/assignments

clean:
	rm -rf _build .pytest_cache .ruff_cache
