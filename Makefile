# make report   the whole assignment on a fresh machine: venv, packages, corpus, LaTeX, notebooks, PDF
#               (ONLY=assignment: notebooks 1-5 alone, the report a student hands in: report/assignment.pdf)
# make test     the same set-up, then the test suite
# make test-fast  the fast tests alone (the math, the loop, the commands on tiny texts; under a minute)
# make lab      open the notebooks in JupyterLab
# make bench    the benchmarks: speed (lib.train against the plain reference, the cells against their
#               floor), memory (a 200 MB corpus), seeds in parallel
# make headline DATA=PATH OUT=DIR   the headline recipe (configs/headline.toml) on any text, then
#               lib.evaluate's table (static, dynamic, mixtures, adaptive yardsticks): OUT/evaluation.json
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STEPS  ?= 100000
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEX_PACKAGES := texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc poppler-utils

.PHONY: setup venv-package data tex browser report report-args test test-fast lab bench headline headline-args clean

OUT ?= runs/headline

$(BIN)/.installed: requirements.txt requirements-test.txt pyproject.toml setup.py lib/model/_kernels.c lib/model/_typed.h
	$(PYTHON) -m venv $(VENV) 2>/dev/null || { rm -rf $(VENV); $(MAKE) --no-print-directory venv-package && \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/.installed

# Debian and Ubuntu ship `python3 -m venv` in a package of its own; installed only when venv fails.
venv-package:
	@if command -v apt-get >/dev/null; then \
	  echo "$(PYTHON) -m venv needs Debian's python3-venv: installing it"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends python3-venv; \
	else \
	  echo "$(PYTHON) -m venv failed: install Python's venv module (see docs/setup.md)." >&2; exit 1; \
	fi

data: setup
	$(BIN)/python -m lib.data

# XeLaTeX and pandoc for nbconvert's PDF, pdftotext for the tests; installed only when missing.
tex:
	@if command -v xelatex >/dev/null && command -v pandoc >/dev/null && command -v pdftotext >/dev/null; then \
	  echo "xelatex, pandoc and pdftotext: present"; \
	elif command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(TEX_PACKAGES); \
	else \
	  echo "Install XeLaTeX, pandoc and pdftotext (poppler) by hand: see the README." >&2; exit 1; \
	fi

# Chromium for the real-browser test (driven by Playwright, which never downloads a browser here).
browser:
	@if command -v chromium >/dev/null; then \
	  echo "chromium: present"; \
	elif command -v apt-get >/dev/null; then \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; \
	else \
	  echo "Install Chromium by hand (the browser test looks for a 'chromium' command): see the README." >&2; exit 1; \
	fi

# What a target was given is checked before it installs, downloads or trains anything.
report-args:
	@case "$(ONLY)" in ""|all|assignment) ;; *) echo "error: ONLY=$(ONLY): give ONLY=assignment (notebooks 1-5)" \
	  "or leave it out (the whole report)." >&2; exit 1;; esac
	@case "$(STEPS)" in ""|*[!0-9]*|0|00*) echo "error: STEPS=$(STEPS): must be a positive integer (100000, the" \
	  "assignment's, by default)." >&2; exit 1;; esac

report: report-args data tex
	$(BIN)/python -m lib.report --steps $(STEPS) $(if $(ONLY),--only $(ONLY))

test: data tex browser
	$(BIN)/python -m pytest

test-fast: data
	$(BIN)/python -m pytest -m fast

headline-args:
	@[ -n "$(strip $(OUT))" ] || { echo "error: OUT is empty: give the run's folder, OUT=DIR." >&2; exit 1; }
	@[ -z "$(DATA)" ] || [ -f "$(DATA)" ] || { echo "error: DATA=$(DATA): no such file; give a UTF-8 text file" \
	  "(or leave DATA out for the default corpus)." >&2; exit 1; }

headline: headline-args data
	$(BIN)/python -m lib.train --config configs/headline.toml $(if $(DATA),--data "$(DATA)") --out "$(OUT)"
	$(BIN)/python -m lib.evaluate --run "$(OUT)" $(if $(DATA),--data "$(DATA)")

lab: data
	$(BIN)/jupyter lab notebooks/

bench: data
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/gated.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/parallel.py
	$(BIN)/python benchmarks/live.py
	$(BIN)/python benchmarks/dynamic.py

clean:
	rm -rf $(VENV) report runs .pytest_cache .hypothesis build lib/model/*.so
