# Two entry points: `make run` (pipeline on the embedded offline default) and `make test`.
# Both create .venv and install the project into it; re-running is cheap (stamp file).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: run test install bench report lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	# torch is pinned to 2.13.0: the CPU wheel; an open range would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

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
