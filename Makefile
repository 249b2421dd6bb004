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

.PHONY: help reproduce robustness test lint lab book bench gpu-check assignments clean chromium

help:
	@echo "make reproduce   execute every chapter, print the claims report (THEORYLAB_SCALE=full on a GPU)"
	@echo "make robustness  every chapter at seeds 0-4: for how many seeds each claim held"
	@echo "make test        ruff, unit and kernel tests, every chapter through nbval"
	@echo "make lab         JupyterLab on 127.0.0.1 with the chapters opening as notebooks"
	@echo "make book        build the Jupyter Book 2 site (HTML needs the MyST theme, downloaded once);"
	@echo "                 BOOK_PUBLIC=1 make book: without solutions or hidden checks, in _build/public"
	@echo "make bench       time the Triton kernels against torch (needs a GPU)"
	@echo "make gpu-check   on a GPU, in 8 minutes: kernel tests compiled, bench, every chapter at full scale"
	@echo "make assignments student and instructor notebooks from every chapter's exercises"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing theorylab and its dependencies into $(VENV) (first run: a few minutes)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 | $(PIP_QUIET)
	@# allow_root, .md files open as notebooks in JupyterLab, kernel "python3" = this environment
	$(PY) -m theorylab.jupyter_setup > /dev/null
	@touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m theorylab.reproduce

robustness: $(STAMP)
	$(PY) -m theorylab.reproduce --seeds $${SEEDS:-0-4} --out _build/robustness

test: $(STAMP) chromium
	$(PY) -m ruff check .
	$(PY) -m pytest -n $${TEST_WORKERS:-2} --dist loadfile --durations=25

# The browser test drives Debian's Chromium (Playwright's own browser download does not work
# everywhere). Install it when missing; if that fails the browser test fails and says why.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  echo "installing Debian's chromium for the browser test (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  { $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q chromium >/dev/null 2>&1; }; } || \
	  echo "WARNING: could not install chromium (apt-get install chromium failed); the browser test will fail"; }

lint: $(STAMP)
	$(PY) -m ruff check .

lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser --ServerApp.root_dir=.

# The chapters are executed once, by `python -m theorylab.reproduce` (the claims report comes with it,
# in _build/book-run); theorylab.booksite stages a copy of the book in which each chapter is its
# executed notebook, and mystmd builds that copy without executing again. A chapter page then offers
# its executed .ipynb as its download. mystmd builds and validates the content offline; only the HTML
# theme (book-theme) must be downloaded, once, from the MyST template service. Without it, the content
# is still built (_build/site/content).
# BOOK_PUBLIC=1: the book a course can publish while it grades the exercises, built in _build/public from a
# copy without the written solutions, the solution code (stubs instead) or the hidden checks.
book: $(STAMP)
	@# THEORYLAB_PROGRESS=0: training progress bars are live widgets, meaningless on a static page.
	@export PATH="$(CURDIR)/$(VENV)/bin:$$PATH" THEORYLAB_PROGRESS=0; \
	root=.; \
	if [ -n "$${BOOK_PUBLIC:-}" ]; then \
	  rm -rf _build/public && theorylab assignments public-book --out _build/public/book && \
	  cp myst.yml _build/public/ && root=_build/public; \
	fi; \
	cd "$$root"; \
	python -m theorylab.reproduce --book book --out _build/book-run || \
	  echo "book: a chapter raised or a claim failed (above); the pages show it"; \
	python -m theorylab.booksite --config myst.yml --executed _build/book-run/executed --out _build/book-site; \
	rm -rf _build/html _build/site; \
	if (cd _build/book-site && myst build --html) && test -f _build/book-site/_build/html/index.html; then \
	  mv _build/book-site/_build/html _build/book-site/_build/site _build/; \
	  echo "book: HTML site in $$root/_build/html (open _build/html/index.html)"; \
	else \
	  echo ""; \
	  if [ -n "$${BOOK_REQUIRE_HTML:-}" ]; then echo "book: the HTML build failed (BOOK_REQUIRE_HTML is set)"; exit 1; fi; \
	  echo "book: no HTML: the MyST book-theme is downloaded from the MyST template service, which this"; \
	  echo "book: machine cannot reach (it needs internet once). Building the content alone."; \
	  (cd _build/book-site && myst build) || true; \
	  test -n "$$(ls _build/book-site/_build/site/content/*.json 2>/dev/null)" || { echo "book: the content build failed"; exit 1; }; \
	  mv _build/book-site/_build/site _build/; \
	  echo "book: content built and validated: $$(ls _build/site/content/*.json | wc -l) pages in $$root/_build/site/content."; \
	fi

bench: $(STAMP)
	$(PY) -m theorylab.kernels.bench

gpu-check: $(STAMP)
	$(PY) -m theorylab.gpu_check

assignments: $(STAMP)
	$(VENV)/bin/theorylab assignments release --out _build/assignments

clean:
	rm -rf _build .pytest_cache .ruff_cache
