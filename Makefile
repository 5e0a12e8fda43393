# Two entry points: `make run` (pipeline on the embedded offline default) and `make test`.
# Both create .venv and install the project into it; re-running is cheap (stamp file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

# The workflow config of `make run` and `make report`: empty = config/config.yaml (the Snakefile's own), else one
# file or several layered ones: CONFIG=config/paper.yaml, CONFIG="config/paper.yaml config/paper-cpu.yaml".
CONFIG ?=
CONFIGFILE := $(if $(strip $(CONFIG)),--configfile $(CONFIG))
# Where the config puts its results (results_dir, the last file that sets it wins).
RESULTS := $(or $(lastword $(shell sed -n 's/^results_dir:[[:space:]]*//p' config/config.yaml $(CONFIG) \
	| tr -d "\"'")),results)
# The report: one self-contained HTML page for the small default run; a zip for any other config (what Snakemake
# recommends for large reports: report/report.html beside the figures and tables; unzip it and open that page).
REPORT ?= $(if $(strip $(CONFIG)),$(RESULTS)/report.zip,$(RESULTS)/report.html)

.PHONY: run test install bench report lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	# torch first, pinned to the CPU wheel 2.13.0: pyproject.toml gives a range (so that a cluster's own CUDA torch
	# stays), and pip resolving that range from scratch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) $(CONFIGFILE)
	$(BIN)/snakemake $(CONFIGFILE) --report $(REPORT)

# The report of a finished run (runs no job): results/report.html; CONFIG=config/paper.yaml: results/paper/report.zip.
report: $(STAMP)
	$(BIN)/snakemake $(CONFIGFILE) --report $(REPORT)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# deepinv imports torchvision, which does not load beside the torch==2.13.0 CPU wheel: the benchmark runs all
# contenders (reference loop, deepinv, ours) side by side in a separate venv on torch 2.14.1 + torchvision 0.29.1.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/bench_fit.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow

clean:
	rm -rf $(VENV) $(BENCH_VENV) .snakemake
