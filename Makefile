# Two commands matter: `make demo` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
# Everything runs offline: the hub is only contacted by `source: hub` on a real run.
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: demo test test-fast venv lint format bench docs rulegraph clean

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0  # first and alone: takes the local CPU build
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(OFFLINE) $(BIN)/snakemake --configfile demo/config.yaml --cores $(CORES)
	$(OFFLINE) $(BIN)/snakemake --configfile demo/config.yaml --report results/report.html
	@echo "Demo done (SYNTHETIC data): results/tables/, results/plots/, results/report.html"

test: venv
	$(OFFLINE) $(BIN)/pytest

# The loop while changing code: every test not marked slow (snakemake runs, training) or slurm.
test-fast: venv
	$(OFFLINE) $(BIN)/pytest -m "not slow and not slurm"

# The same checks as .pre-commit-config.yaml and tests/test_lint.py.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

format: venv
	$(BIN)/ruff format .
	$(BIN)/snakefmt .

# Benchmarks print side-by-side timings and ratios (see README "Benchmarks").
bench: venv
	$(OFFLINE) $(BIN)/python bench/bench_divergence.py
	$(OFFLINE) $(BIN)/python bench/bench_pairing.py
	$(OFFLINE) $(BIN)/python bench/bench_dryrun.py
	$(OFFLINE) $(BIN)/python bench/bench_trainer.py --rounds 3
	$(OFFLINE) PYTHONPATH=scripts $(BIN)/python bench/bench_memory.py

# The README's rule graph of the paper config, drawn from the Snakefile itself so it cannot go stale.
# Needs Debian's graphviz (`dot`); written to a temporary name first, so a failure leaves the old image.
# The README's configuration reference, generated from the schema (tests/test_docs.py keeps it current).
docs: venv
	$(BIN)/python docs/config_reference.py

rulegraph: venv
	mkdir -p docs
	set -o pipefail; $(BIN)/snakemake --rulegraph | dot -Tsvg > docs/rulegraph.svg.tmp
	mv docs/rulegraph.svg.tmp docs/rulegraph.svg

clean:
	rm -rf results resources logs benchmarks checkpoints .snakemake
