# make report   the whole assignment on a fresh machine: venv, packages, corpus, LaTeX, notebooks, PDF
# make test     the same set-up, then the test suite
# make test-fast  the fast tests alone (the math, the loop, the commands on tiny texts; under a minute)
# make lab      open the notebooks in JupyterLab
# make bench    the benchmarks: speed (lib.train against the plain reference, the cells against their
#               floor), memory (a 200 MB corpus), seeds in parallel
# make headline DATA=PATH OUT=DIR   the headline recipe, 600 s of training on any text (10% held out)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STEPS  ?= 100000
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEX_PACKAGES := texlive-xetex texlive-fonts-recommended texlive-plain-generic pandoc poppler-utils

.PHONY: setup data tex browser report test test-fast lab bench headline clean

# The headline recipe, found by hand for 600 s of training on a 2-core machine; docs/ladder.md has its
# measurements and the runs that chose it (the search's best trials among them).
HEADLINE := --cell gru --m 512 --batch-size 32 --seq-length 50 --optimizer adam --eta 0.004 --normalize-loss \
            --sig 0.05 --dtype float32 --dropout 0.5 --ema 0.999 --plateau-factor 0.7 --val-every 500
OUT ?= runs/headline

$(BIN)/.installed: requirements.txt requirements-test.txt pyproject.toml setup.py lib/_kernels.c lib/_typed.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

setup: $(BIN)/.installed

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

report: data tex
	$(BIN)/python -m lib.report --steps $(STEPS)

test: data tex browser
	$(BIN)/python -m pytest

test-fast: data
	$(BIN)/python -m pytest -m fast

headline: data
	$(BIN)/python -m lib.train $(HEADLINE) --val-fraction 0.1 --steps 1000000000 --max-seconds 600 \
	  $(if $(DATA),--data $(DATA)) --out $(OUT)

lab: data
	$(BIN)/jupyter lab notebooks/

bench: data
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/gated.py
	$(BIN)/python benchmarks/memory.py
	$(BIN)/python benchmarks/parallel.py
	$(BIN)/python benchmarks/live.py

clean:
	rm -rf $(VENV) report runs .pytest_cache .hypothesis build lib/*.so
